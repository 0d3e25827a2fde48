import math

import pytest
import torch
from torch import nn

from mmlesson import TrainConfig, fit
from mmlesson.analysis.discrepancy import discrepancy_ratio, true_class_scores
from mmlesson.methods import StepState
from mmlesson.methods.ogm_ge import OGMGE, coefficient, coefficients, modulate_gradients
from mmlesson.models import FUSIONS, MultimodalModel

LOG3 = math.log(3.0)


@torch.no_grad()
def split_discrepancy(model, split, device, batch_size: int = 256) -> dict:
    """``{"scores": {m: s_m}, "ratio": s_audio / s_visual}`` over every sample of ``split``."""
    model.eval()
    totals: dict[str, float] = {}
    for batch in split.batches(batch_size, device=device):
        for m, s in true_class_scores(model(batch).logits_per_modality, batch["label"]).items():
            totals[m] = totals.get(m, 0.0) + s
    return {"scores": totals, "ratio": discrepancy_ratio(totals["audio"], totals["visual"])}


def test_coefficients_by_hand_both_forms():
    labels = torch.tensor([0, 1])
    logits = {"audio": torch.tensor([[LOG3, 0.0], [0.0, LOG3]]),  # p(true) = 3/4 twice: s_a = 1.5
              "visual": torch.zeros(2, 2)}  # p(true) = 1/2 twice: s_v = 1.0
    assert true_class_scores(logits, labels) == pytest.approx({"audio": 1.5, "visual": 1.0})
    jump = coefficients(logits, labels, alpha=0.5, form="jump")
    assert jump["audio"] == pytest.approx(1 - math.tanh(0.5 * 1.5)) and jump["visual"] == 1.0
    continuous = coefficients(logits, labels, alpha=0.5, form="continuous")
    assert continuous["audio"] == pytest.approx(1 - math.tanh(0.5 * 0.5)) and continuous["visual"] == 1.0


def test_ratio_below_one_modulates_the_other_modality():
    labels = torch.tensor([0, 1])
    logits = {"audio": torch.zeros(2, 2), "visual": torch.tensor([[LOG3, 0.0], [0.0, LOG3]])}
    result = coefficients(logits, labels, alpha=0.8)
    assert result["audio"] == 1.0 and result["visual"] == pytest.approx(1 - math.tanh(0.8 * 1.5))


def test_ratio_exactly_one_modulates_nobody_and_the_jump_is_where_it_should_be():
    labels = torch.tensor([0, 1])
    same = {"audio": torch.tensor([[1.0, 0.0], [0.0, 2.0]]), "visual": torch.tensor([[1.0, 0.0], [0.0, 2.0]])}
    for form in ("jump", "continuous"):
        assert coefficients(same, labels, alpha=0.8, form=form) == {"audio": 1.0, "visual": 1.0}
    assert coefficient(1.0 + 1e-9, 0.8, "jump") == pytest.approx(1 - math.tanh(0.8))  # jumps just above 1
    assert coefficient(1.0 + 1e-9, 0.8, "continuous") == pytest.approx(1.0)  # continuous there
    assert coefficient(0.5, 0.8, "jump") == 1.0


def test_zero_scores_give_no_nan():
    labels = torch.tensor([0, 0])
    never_right = torch.tensor([[-math.inf, 0.0], [-math.inf, 0.0]])  # p(true class) is exactly 0
    both_zero = coefficients({"audio": never_right, "visual": never_right}, labels, alpha=0.8)
    assert both_zero == {"audio": 1.0, "visual": 1.0}
    one_zero = coefficients({"audio": torch.zeros(2, 2), "visual": never_right}, labels, alpha=0.8)
    assert one_zero == {"audio": 0.0, "visual": 1.0}  # rho = inf: tanh saturates at 1
    assert discrepancy_ratio(0.0, 0.0) == 1.0 and discrepancy_ratio(1.0, 0.0) == math.inf
    assert all(math.isfinite(v) for v in one_zero.values())


class RecordingOptimizer:
    """Stands in for the optimiser: keeps a copy of every gradient the step would have used."""

    def __init__(self, model):
        self.model, self.seen = model, None

    def zero_grad(self, set_to_none=True):
        self.model.zero_grad(set_to_none=set_to_none)

    def step(self):
        self.seen = {n: p.grad.clone() for n, p in self.model.named_parameters() if p.grad is not None}


def plain_gradients(model, batch):
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(batch).logits, batch["label"]).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_the_logged_ratio_stays_finite_when_a_float32_score_underflows():
    from mmlesson.methods.joint import modality_ratios

    labels = torch.tensor([0, 1])
    audio = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    visual = torch.tensor([[-150.0, 0.0, 0.0], [0.0, -120.0, 0.0]])  # true-class probabilities below float32's range
    assert true_class_scores({"visual": visual}, labels)["visual"] == 0.0
    ratio = modality_ratios({"audio": audio, "visual": visual}, labels)["ratio/audio_over_visual"]
    log_p = {m: torch.log_softmax(x.double(), 1)[[0, 1], labels] for m, x in (("audio", audio), ("visual", visual))}
    by_hand = math.exp(math.log(log_p["audio"].exp().sum()) - torch.logsumexp(log_p["visual"], 0).item())
    assert math.isfinite(ratio) and ratio == pytest.approx(by_hand, rel=1e-9)
    finite = modality_ratios({"audio": audio, "visual": audio.flip(1)}, labels)["ratio/audio_over_visual"]
    assert finite == discrepancy_ratio(*true_class_scores({"a": audio, "v": audio.flip(1)}, labels).values())


@pytest.mark.parametrize("which", ["conv", "all"])
def test_modulated_gradients_are_k_times_the_plain_ones_on_chosen_parameters_only(which, tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, width=4).eval()  # eval: batch norm is a fixed function, both passes agree
    plain = plain_gradients(model, tiny_batch)
    config = TrainConfig.build(method="ogm_ge", alpha=0.8, ge=False, modulated_params=which)
    optimizer = RecordingOptimizer(model)
    stats = OGMGE(config).training_step(model, tiny_batch, optimizer, StepState(0, 0, torch.device("cpu")))
    factors = coefficients(model(tiny_batch).logits_per_modality, tiny_batch["label"], 0.8)
    assert stats["coefficient/audio"] == pytest.approx(factors["audio"])
    assert min(factors.values()) < 1.0  # something was modulated
    for name, grad in optimizer.seen.items():
        modality = name.split(".")[1] if name.startswith("encoders.") else None
        chosen = modality is not None and (which == "all" or grad.dim() == 4)
        expected = plain[name] * factors[modality] if chosen else plain[name]
        assert torch.allclose(grad, expected, atol=1e-7, rtol=1e-5), name


def test_outside_the_window_nothing_is_modulated(tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, width=4).eval()
    plain = plain_gradients(model, tiny_batch)
    config = TrainConfig.build(method="ogm_ge", alpha=0.8, ge=True, modulation_window=(2, 5))
    optimizer = RecordingOptimizer(model)
    stats = OGMGE(config).training_step(model, tiny_batch, optimizer, StepState(6, 0, torch.device("cpu")))
    assert stats["modulated"] == 0.0 and stats["coefficient/audio"] == stats["coefficient/visual"] == 1.0
    for name, grad in optimizer.seen.items():
        assert torch.allclose(grad, plain[name], atol=1e-7, rtol=1e-5), name


def test_ge_noise_has_the_gradients_own_standard_deviation():
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 64, 5)
    conv.weight.grad = torch.randn_like(conv.weight) * 0.3 + 0.1
    original = conv.weight.grad.clone()
    model = nn.Module()
    model.encoders = nn.ModuleDict({"audio": conv})
    modulate_gradients(model, {"audio": 0.0}, "conv", noise=True)  # k = 0: what is left is the noise alone
    noise = conv.weight.grad
    assert float(noise.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(noise.std()) == pytest.approx(float(original.std()), rel=0.02)
    assert conv.bias.grad is None  # biases are not 4-D: untouched under "conv"


@pytest.mark.parametrize("fusion", sorted(set(FUSIONS) - {"gated"}))  # gated: refused (test_ccat.py)
def test_ogm_ge_trains_with_every_fusion_that_has_both_branches(fusion, tiny_dataset):
    config = TrainConfig.build(method="ogm_ge", fusion=fusion, data_knobs=tiny_dataset.meta["knobs"] | {}, width=4,
                         epochs=1, batch_size=16, probe=False, progress="off")
    metrics = fit(config, dataset=tiny_dataset).metrics
    coefficient_history = metrics["history"][0]["train"]["coefficient"]
    assert set(coefficient_history) == {"audio", "visual"}
    assert all(0.0 <= v <= 1.0 for v in coefficient_history.values())


def test_a_short_ogm_run_moves_the_ratio_toward_one():
    """Same seed, same data: after a few epochs audio dominates the joint model (rho >> 1); OGM
    (alpha 0.8, no noise) ends with a ratio closer to 1."""
    knobs = dict(train_size=600, val_size=300, test_size=60)
    common = dict(data_knobs=knobs, width=4, epochs=3, probe=False, progress="off", seed=0)
    from mmlesson.data import load

    data = load("synthav", **knobs)
    ratios = {}
    for method, extra in (("joint", {}), ("ogm_ge", {"ge": False})):
        model = fit(TrainConfig.build(method=method, **common, **extra), dataset=data).model
        ratios[method] = split_discrepancy(model, data.val, "cpu")["ratio"]
    assert ratios["joint"] > 1.2
    assert abs(math.log(ratios["ogm_ge"])) < abs(math.log(ratios["joint"]))
