"""ARL (Chapter 3): the pure functions against hand computation, the gradient-scaling identity, the
loss of Eq. 22, the gradient of Eq. 19-20, and the reduction to joint training."""
import copy
import json
import math

import pytest

from mmlesson.errors import ConfigError
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig
from mmlesson.cli import main
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.arl import coefficients, dependency, gradient_factor, variance_proxy
from mmlesson.methods.base import ScaleGradient, scale_gradient
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS


def test_variance_proxy_and_dependency_by_hand():
    uniform = torch.zeros(3, 4)
    assert variance_proxy(uniform) == pytest.approx(1 / math.log(4), rel=1e-6)  # entropy of 4 equal classes
    two_way = torch.tensor([[0.0, 0.0, -1e4], [0.0, 0.0, -1e4]])  # p = (1/2, 1/2, 0): entropy log 2
    assert variance_proxy(two_way) == pytest.approx(1 / math.log(2), rel=1e-6)
    logits = torch.tensor([[math.log(3), 0.0], [0.0, 0.0]])  # p(true) = 3/4 and 1/2
    assert dependency(logits, torch.tensor([0, 1])) == pytest.approx((0.75 + 0.5) / 2, rel=1e-6)


def test_one_hot_and_hopeless_predictions_stay_finite():
    one_hot = torch.tensor([[1e4, 0.0, 0.0], [0.0, 1e4, 0.0]])
    labels = torch.tensor([0, 1])
    assert math.isfinite(variance_proxy(one_hot)) and variance_proxy(one_hot) > 1e5
    wrong = torch.tensor([[0.0, 1e4, 0.0], [1e4, 0.0, 0.0]])
    assert dependency(wrong, labels) > 0
    for audio, visual in [(one_hot, wrong), (wrong, one_hot), (one_hot, one_hot), (torch.zeros(2, 3), one_hot)]:
        a = coefficients({"audio": audio, "visual": visual}, labels, temperature=8.0)
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in a.values())
        assert a["audio"] + a["visual"] == pytest.approx(1.0)


def test_coefficients_by_hand():
    labels = torch.tensor([0, 1])
    audio = torch.tensor([[math.log(3), 0.0], [0.0, math.log(3)]])  # p(true) 3/4 both: d = 3/4
    visual = torch.zeros(2, 2)  # uniform: d = 1/2, entropy log 2
    entropy_audio = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    q_ratio = (1 / entropy_audio) / (1 / math.log(2))
    d_ratio = 0.75 / 0.5
    temperature = 4.0
    expected_audio = math.exp(temperature * q_ratio) / (math.exp(temperature * q_ratio) + math.exp(temperature * d_ratio))
    a = coefficients({"audio": audio, "visual": visual}, labels, temperature)
    assert a["audio"] == pytest.approx(expected_audio, rel=1e-6)
    assert a["visual"] == pytest.approx(1 - expected_audio, rel=1e-6)
    assert gradient_factor(0.3) == pytest.approx(1.3)
    assert gradient_factor(0.3, residual=False) == pytest.approx(0.3)
    assert gradient_factor(0.3, asymmetric=False) == 1.0


def test_scale_gradient_is_the_identity_forward_and_scales_backward_exactly():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, dtype=torch.float64)
    y = ScaleGradient.apply(x, 1.7)
    assert torch.equal(y, x)
    (y.sin() @ weights).sum().backward()
    scaled = x.grad.clone()
    x.grad = None
    (x.sin() @ weights).sum().backward()
    torch.testing.assert_close(scaled, 1.7 * x.grad, rtol=0, atol=0)
    assert scale_gradient(x, 1.0) is x


def assert_scaled(actual, reference, factor, name):
    """``actual == factor * reference`` up to float32 rounding (relative to the whole tensor)."""
    error = float((actual - factor * reference).norm())
    assert error <= 1e-5 * float((factor * reference).norm()) + 1e-12, (name, error)


def tiny_config(**overrides):
    options = dict(data_knobs=TINY_KNOBS, width=4, epochs=1, batch_size=16, probe=False, progress="off", method="arl")
    if overrides.get("method", "arl") == "arl":
        options.update(temperature=4.0, gamma=4.0)
    return TrainConfig.build(**{**options, **overrides})


def step(config, model, batch):
    """One training step with lr 0 (the parameters stay put); returns its stats and every gradient."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    stats = METHODS[config.method](config).training_step(model, batch, optimizer, StepState(0, 0, torch.device("cpu")))
    return stats, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.fixture
def model(tiny_dataset):
    torch.manual_seed(0)
    return MultimodalModel(tiny_dataset.num_classes, width=4).train()


def equation_22(model, batch, gamma):
    output = model(batch)
    labels = batch["label"]
    return F.cross_entropy(output.logits, labels) + gamma * sum(
        F.cross_entropy(output.logits_per_modality[m], labels) for m in ("audio", "visual"))


def test_the_loss_is_equation_22_and_encoder_gradients_are_scaled_by_one_plus_a(model, tiny_batch):
    config = tiny_config()
    reference = copy.deepcopy(model)
    stats, grads = step(config, model, tiny_batch)
    loss = equation_22(reference, tiny_batch, config.options.gamma)
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-5)
    loss.backward()
    a = {m: stats[f"coefficient/{m}"] for m in ("audio", "visual")}
    for name, p in reference.named_parameters():
        modality = name.split(".")[1] if name.startswith("encoders.") else None
        factor = 1 + a[modality] if modality else 1.0  # the head is not scaled
        assert_scaled(grads[name], p.grad, factor, name)
    with torch.no_grad():
        expected = coefficients(reference(tiny_batch).logits_per_modality, tiny_batch["label"], config.options.temperature)
    assert a == pytest.approx(expected, rel=1e-5)


def test_without_the_residual_the_factor_is_a_alone(model, tiny_batch):
    reference = copy.deepcopy(model)
    stats, grads = step(tiny_config(residual=False), model, tiny_batch)
    equation_22(reference, tiny_batch, 4.0).backward()
    for name in [n for n in grads if n.startswith("encoders.visual.")]:
        assert_scaled(grads[name], dict(reference.named_parameters())[name].grad, stats["coefficient/visual"], name)


def test_with_components_off_arl_is_joint_training(model, tiny_batch):
    joint_model = copy.deepcopy(model)
    _, arl_grads = step(tiny_config(unimodal_loss=False, asymmetric=False), model, tiny_batch)
    _, joint_grads = step(tiny_config(method="joint"), joint_model, tiny_batch)
    assert arl_grads.keys() == joint_grads.keys()
    for name in arl_grads:
        torch.testing.assert_close(arl_grads[name], joint_grads[name], rtol=0, atol=0, msg=name)


def test_fixed_encoder_gradient_scale_of_joint_training(model, tiny_batch):
    scaled_model = copy.deepcopy(model)
    _, plain = step(tiny_config(method="joint"), model, tiny_batch)
    _, scaled = step(tiny_config(method="joint", encoder_grad_scale=(5.0, 0.2)), scaled_model, tiny_batch)
    for name in plain:
        factor = 5.0 if name.startswith("encoders.audio.") else 0.2 if name.startswith("encoders.visual.") else 1.0
        assert_scaled(scaled[name], plain[name], factor, name)


def test_arl_from_the_command_line_records_its_coefficients(tmp_path):
    out = tmp_path / "arl"
    knobs = [arg for k, v in TINY_KNOBS.items() for arg in ("--data-knob", f"{k}={v}")]
    code = main(["train", "--method", "arl", "--gamma", "2", "--temperature", "8", "--no-residual", "--epochs", "2",
                 "--width", "4", "--batch-size", "16", "--no-probe", "--progress", "off", "--out", str(out), *knobs])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    options = metrics["config"]["options"]
    assert options["gamma"] == 2.0 and options["temperature"] == 8.0 and options["residual"] is False
    assert set(options) == {"gamma", "temperature", "unimodal_loss", "asymmetric", "residual"}  # ARL's own only
    for record in metrics["history"]:
        train = record["train"]
        assert set(train["coefficient"]) == {"audio", "visual"}
        assert train["coefficient"]["audio"] + train["coefficient"]["visual"] == pytest.approx(1.0)
        assert train["factor"] == pytest.approx(train["coefficient"])  # no residual: the factor is a itself
        assert train["ratio"]["inverse_variance"] > 0 and train["ratio"]["audio_over_visual"] > 0


def test_bad_arl_options_are_refused():
    with pytest.raises(ConfigError, match="--temperature must be a finite number, got nan"):
        TrainConfig.build(method="arl", temperature=float("nan"))
    with pytest.raises(ConfigError, match="--gamma must be a number >= 0.0, got -1"):
        TrainConfig.build(method="arl", gamma=-1)
    with pytest.raises(ConfigError, match=r"--encoder-grad-scale must be > 0.0, got \(0.0, 1.0\)"):
        TrainConfig.build(encoder_grad_scale=(0.0, 1.0))
    with pytest.raises(ConfigError, match="--encoder-grad-scale takes 2 values, got 3"):
        TrainConfig.build(encoder_grad_scale=(1.0, 1.0, 1.0))
