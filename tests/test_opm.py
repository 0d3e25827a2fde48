"""OPM: the drop probabilities against hand numbers (ties, a zero score, the clip), the half-bias scores of
the release against the package's full-bias branch, one SGD step on the dropped features against the loss
written by hand with a supplied mask, the warm-up that is joint training, and the randomness."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig, fit
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods import opm
from mmlesson.methods.opm import draw_keep_masks, dropped_fraction, opm_drop_probs, score_logits
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

CPU = torch.device("cpu")


def config(**overrides):
    return TrainConfig.build(**{"method": "opm", "data_knobs": TINY_KNOBS, "width": 4, "epochs": 1, "batch_size": 16,
                                "probe": False, "progress": "off", "device": "cpu", **overrides})


def test_drop_probs_by_hand():
    q = opm_drop_probs({"audio": 3.0, "visual": 2.0}, q_base=0.5, q_lambda=0.5)
    assert q["audio"] == pytest.approx(0.5 * (1 + 0.5 * math.tanh(0.5))) and q["visual"] == 0.0
    q = opm_drop_probs({"audio": 1.0, "visual": 1.25}, q_base=0.4, q_lambda=2.0)
    assert q["audio"] == 0.0 and q["visual"] == pytest.approx(0.4 * (1 + 2.0 * math.tanh(0.25)))


def test_a_tie_drops_nothing_and_the_smallest_lead_jumps_to_q_base():
    assert opm_drop_probs({"audio": 2.5, "visual": 2.5}, 0.5, 0.5) == {"audio": 0.0, "visual": 0.0}
    q = opm_drop_probs({"audio": 2.5 + 1e-9, "visual": 2.5}, 0.5, 0.5)
    assert q["audio"] == pytest.approx(0.5) and q["visual"] == 0.0


def test_zero_scores_and_the_clip():
    q = opm_drop_probs({"audio": 1.0, "visual": 0.0}, 0.5, 0.5)  # rho = inf: tanh saturates at 1
    assert q == {"audio": pytest.approx(0.75), "visual": 0.0}
    assert opm_drop_probs({"audio": 0.0, "visual": 0.0}, 0.5, 0.5) == {"audio": 0.0, "visual": 0.0}
    assert opm_drop_probs({"audio": 9.0, "visual": 1.0}, 0.9, 1.0)["audio"] == 1.0  # 0.9 (1 + tanh 8) clipped


def test_dropped_fraction_weighs_by_feature_size():
    assert dropped_fraction({"audio": 0.6, "visual": 0.0}, {"audio": 512, "visual": 512}) == pytest.approx(0.3)
    assert dropped_fraction({"audio": 0.6, "visual": 0.0}, {"audio": 100, "visual": 300}) == pytest.approx(0.15)


def test_masks_keep_each_sample_with_probability_one_minus_q_and_never_drop_the_other_modality():
    torch.manual_seed(0)
    masks = draw_keep_masks({"audio": 0.3, "visual": 0.0}, 20000)
    assert masks["audio"].shape == (20000, 1) and set(masks["audio"].unique().tolist()) == {0.0, 1.0}
    assert float(masks["audio"].mean()) == pytest.approx(0.7, abs=0.01)
    assert torch.equal(masks["visual"], torch.ones(20000, 1))


@pytest.fixture
def model(tiny_dataset):
    torch.manual_seed(0)
    return MultimodalModel(tiny_dataset.num_classes, width=4).train()


def test_the_release_scores_with_half_the_bias_and_full_is_the_package_branch(model, tiny_batch):
    with torch.no_grad():
        model.fusion.head.bias.copy_(torch.linspace(-2.0, 3.0, model.fusion.head.bias.numel()))
    features = {m: model.encoders[m](tiny_batch[m]).detach() for m in ("audio", "visual")}
    weight, bias = model.fusion.head.weight, model.fusion.head.bias
    size_a = features["audio"].shape[1]
    blocks = {"audio": weight[:, :size_a], "visual": weight[:, size_a:]}
    for share, name in ((0.5, "half"), (1.0, "full")):
        logits = score_logits(model, model.fusion.branch_logits(features), name)
        for m in ("audio", "visual"):
            torch.testing.assert_close(logits[m], features[m] @ blocks[m].T + share * bias, rtol=1e-5, atol=1e-5)


def paper_scores(reference, batch):
    """s_m = sum_i softmax(W_m z_m,i + b/2)[y_i], written out."""
    weight, bias = reference.fusion.head.weight.detach(), reference.fusion.head.bias.detach()
    size_a = reference.encoders["audio"].out_dim
    blocks = {"audio": weight[:, :size_a], "visual": weight[:, size_a:]}
    scores = {}
    with torch.no_grad():
        for m in ("audio", "visual"):
            logits = reference.encoders[m](batch[m]) @ blocks[m].T + bias / 2
            p = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
            scores[m] = float(p[torch.arange(len(batch["label"])), batch["label"]].sum())
    return scores


def test_one_sgd_step_is_the_step_on_the_dropped_features_with_a_supplied_mask(model, tiny_batch, monkeypatch):
    cfg = config(q_base=0.5, q_lambda=0.5, p_exe=1.0, warmup_epochs=0)
    with torch.no_grad():  # a bias that matters: the scores use half of it
        model.fusion.head.bias.copy_(torch.linspace(-1.0, 1.0, model.fusion.head.bias.numel()))
    reference = copy.deepcopy(model)
    # the drop probabilities by hand (the paper's rule) from the reference model's own scores
    s = paper_scores(copy.deepcopy(reference), tiny_batch)  # a copy: its batch norm statistics stay untouched
    dominant, other = ("audio", "visual") if s["audio"] > s["visual"] else ("visual", "audio")
    q_dominant = min(0.5 * (1 + 0.5 * math.tanh(s[dominant] / s[other] - 1)), 1.0)
    batch_size = len(tiny_batch["label"])
    masks = {dominant: torch.tensor([[1.0], [0.0], [0.0], [1.0]] * (batch_size // 4)), other: torch.ones(batch_size, 1)}
    asked = []
    monkeypatch.setattr(opm, "draw_keep_masks", lambda q, b: asked.append((q, b)) or masks)

    lr = 0.05
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0, weight_decay=0.0)
    stats = METHODS["opm"](cfg).training_step(model, tiny_batch, optimizer, StepState(0, 0, CPU))

    (q_asked, b_asked), = asked
    assert b_asked == batch_size and q_asked[other] == 0.0
    assert q_asked[dominant] == pytest.approx(q_dominant, rel=1e-5)
    theta = q_dominant / 2  # both encoders give features of one size
    z = {m: reference.encoders[m](tiny_batch[m]) for m in ("audio", "visual")}
    dropped = torch.cat([z[m] * masks[m] / (1 - theta) for m in ("audio", "visual")], dim=1)
    logits = dropped @ reference.fusion.head.weight.T + reference.fusion.head.bias
    loss = F.cross_entropy(logits, tiny_batch["label"])
    loss.backward()
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-5)
    assert stats["dropping"] == 1.0 and stats[f"dropped/{dominant}"] == 0.5 and stats[f"dropped/{other}"] == 0.0
    after = dict(model.named_parameters())
    for name, p in reference.named_parameters():
        torch.testing.assert_close(after[name].detach(), p.detach() - lr * p.grad, rtol=1e-5, atol=1e-6, msg=name)


def one_step(model, batch, epoch, **options):
    """One SGD step of OPM with ``options`` (of joint training without): its stats, the parameters after it,
    and whether the global RNG moved."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    method = METHODS["opm"](config(**options)) if options else METHODS["joint"](config(method="joint"))
    rng = torch.get_rng_state()
    stats = method.training_step(model, batch, optimizer, StepState(epoch, 0, CPU))
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    return stats, weights, not torch.equal(rng, torch.get_rng_state())


def test_warm_up_epochs_are_joint_training_and_draw_nothing(model, tiny_batch):
    joint_model = copy.deepcopy(model)
    stats, warm, moved = one_step(model, tiny_batch, epoch=5, warmup_epochs=6, p_exe=1.0)
    _, joint, _ = one_step(joint_model, tiny_batch, epoch=5)
    assert not moved and stats["dropping"] == 0.0 and stats["drop_prob/audio"] == stats["drop_prob/visual"] == 0.0
    for name in joint:
        assert torch.equal(warm[name], joint[name]), name


def test_after_the_warm_up_the_dominant_modality_is_dropped_reproducibly(model, tiny_batch):
    second = copy.deepcopy(model)
    torch.manual_seed(3)
    stats, first_weights, moved = one_step(model, tiny_batch, epoch=6, warmup_epochs=6, p_exe=1.0)
    torch.manual_seed(3)
    _, second_weights, _ = one_step(second, tiny_batch, epoch=6, warmup_epochs=6, p_exe=1.0)
    assert moved and stats["dropping"] == 1.0
    assert min(stats["drop_prob/audio"], stats["drop_prob/visual"]) == 0.0
    assert max(stats["drop_prob/audio"], stats["drop_prob/visual"]) >= 0.5  # q_base at least
    weaker = "audio" if stats["drop_prob/audio"] == 0.0 else "visual"
    assert stats[f"dropped/{weaker}"] == 0.0
    for name in first_weights:
        assert torch.equal(first_weights[name], second_weights[name]), name


def test_p_exe_zero_never_drops(model, tiny_batch):
    joint_model = copy.deepcopy(model)
    stats, weights, _ = one_step(model, tiny_batch, epoch=9, warmup_epochs=0, p_exe=0.0)
    _, joint, _ = one_step(joint_model, tiny_batch, epoch=9)
    assert stats["dropping"] == 0.0 and stats["drop_prob/audio"] + stats["drop_prob/visual"] > 0
    for name in joint:
        assert torch.equal(weights[name], joint[name]), name


def test_a_tiny_run_drops_after_its_warm_up_and_evaluates_the_plain_model(tiny_dataset):
    run = fit(config(epochs=3, warmup_epochs=1), dataset=tiny_dataset)
    history = run.metrics["history"]
    assert history[0]["train"]["dropping"] == 0.0
    assert all(row["train"]["dropping"] > 0.0 for row in history[1:])
    assert all(sum(row["train"]["dropped"].values()) > 0.0 for row in history[1:])
    assert type(run.model.fusion).__name__ == "ConcatFusion"  # nothing to switch off at evaluation


@pytest.mark.parametrize("fusion", ["sum", "film", "gated", "shared"])
def test_other_fusions_are_refused_with_the_fix(fusion, tiny_dataset):
    model = MultimodalModel(tiny_dataset.num_classes, width=4, fusion=fusion)
    with pytest.raises(ConfigError, match="use --fusion concat"):
        METHODS["opm"](config(fusion=fusion)).prepare_model(model)


def test_probabilities_above_one_are_refused_with_one_line():
    for name, flag in (("q_base", "--q-base"), ("p_exe", "--p-exe")):
        with pytest.raises(ConfigError, match=f"^{flag} is a probability and must be <= 1, got 1.5$"):
            config(**{name: 1.5})
    with pytest.raises(ConfigError, match="--q-lambda must be a number >= 0.0"):
        config(q_lambda=-0.1)
