"""PMR: prototypes, prototype predictions, the imbalance ratio and the coefficients against hand numbers;
one training step against the update computed by hand with autograd on the loss as the paper writes it
(prototypes constant), with and without the entropy regulariser; the window and the tie; the prototype
subset (deterministic, every class present, the global random state untouched) and the state."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig
from mmlesson.data.loader import TensorSplit
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.pmr import PMR, pmr_coefficients, pmr_prototypes, prototype_ratio
from mmlesson.models import MultimodalModel

from .conftest import linear_model

CPU = torch.device("cpu")


# ---------------------------------------------------------------- the pure functions, by hand

def test_prototypes_are_class_means_with_momentum_and_a_missing_class_keeps_its_last_one():
    features = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 2.0], [2.0, 4.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    fresh = pmr_prototypes(features, labels, 3)
    torch.testing.assert_close(fresh, torch.tensor([[2.0, 1.0], [1.0, 3.0], [0.0, 0.0]], dtype=torch.float64))
    previous = torch.tensor([[0.0, 0.0], [5.0, 5.0], [7.0, -1.0]], dtype=torch.float64)
    mixed = pmr_prototypes(features, labels, 3, previous=previous, momentum=0.25)
    torch.testing.assert_close(mixed, torch.tensor([[1.5, 0.75], [2.0, 3.5], [7.0, -1.0]], dtype=torch.float64))


def test_the_prototype_ratio_by_hand():
    labels = torch.tensor([0, 1])
    audio = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]], dtype=torch.float64)  # q(true) = 3/4, 1/2
    visual = torch.tensor([[0.0, 0.0], [0.0, math.log(4.0)]], dtype=torch.float64)  # q(true) = 1/2, 1/5
    scores, rho = prototype_ratio({"audio": audio, "visual": visual}, labels)
    assert scores == pytest.approx({"audio": 1.25, "visual": 0.7}, rel=1e-12)
    assert rho == pytest.approx(1.25 / 0.7, rel=1e-12)


def test_coefficients_go_to_the_slow_modality_by_hand():
    assert pmr_coefficients(1.5, alpha=2.0) == {"audio": 0.0, "visual": 2.0}  # audio ahead: visual is slow
    assert pmr_coefficients(0.8, alpha=2.0) == {"audio": 2.0, "visual": 0.0}
    assert pmr_coefficients(1.5, 2.0, "ratio") == pytest.approx({"audio": 0.0, "visual": 1.0})  # 2 (1.5 - 1)
    assert pmr_coefficients(0.8, 2.0, "ratio") == pytest.approx({"audio": 0.5, "visual": 0.0})  # 2 (1.25 - 1)
    assert pmr_coefficients(3.0, 2.0, "ratio") == {"audio": 0.0, "visual": 2.0}  # min(rho - 1, 1) = 1
    assert pmr_coefficients(math.inf, 2.0, "ratio") == {"audio": 0.0, "visual": 2.0}  # S_v = 0
    assert pmr_coefficients(0.0, 2.0, "ratio") == {"audio": 2.0, "visual": 0.0}  # S_a = 0
    for weighting in ("constant", "ratio"):
        assert pmr_coefficients(1.0, 2.0, weighting) == {"audio": 0.0, "visual": 0.0}  # a tie: neither is slow


# ---------------------------------------------------------------- one step on a linear model, by hand

def linear_split(n: int = 12, seed: int = 1, visual_noise: float = 3.0) -> TensorSplit:
    """Class-dependent inputs, visual noisier than audio; every class present."""
    generator = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % 3
    centres_a = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    centres_v = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    audio = centres_a[label] + 0.3 * torch.randn(n, 4, generator=generator, dtype=torch.float64)
    visual = centres_v[label] + visual_noise * torch.randn(n, 5, generator=generator, dtype=torch.float64)
    return TensorSplit(audio=audio, visual=visual, label=label)


def whole(split: TensorSplit) -> dict:
    return {"audio": split.audio, "visual": split.visual, "label": split.label}


def pmr(**options) -> PMR:
    return PMR(TrainConfig.build(method="pmr", batch_size=5, **{"prototype_fraction": 1.0, **options}))


def sgd_step(method, model, batch, epoch: int = 0) -> tuple[dict, dict]:
    """One step with plain SGD, lr 1: returns the stats and ``before - after`` of every parameter."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0, weight_decay=0.0)
    stats = method.training_step(model, batch, optimizer, StepState(epoch, 0, CPU))
    return stats, {n: before[n] - p.detach() for n, p in model.named_parameters()}


def paper_loss(model, batch, prototypes, alpha, weighting="constant", per_weight=0.0):
    """The loss as the paper writes it, from scratch: z^m, d_ik = ||z_i - c_k|| (c constant), q = softmax(-d),
    rho = sum q^a(y) / sum q^v(y), L = CE(fused) + beta CE(-d^slow) - mu' H(q^dominant)."""
    A, V = model.encoders["audio"].linear.weight, model.encoders["visual"].linear.weight
    W, b = model.fusion.head.weight, model.fusion.head.bias
    z = {"audio": batch["audio"] @ A.T, "visual": batch["visual"] @ V.T}
    labels = batch["label"]
    d = {m: ((z[m][:, None, :] - prototypes[m][None, :, :]) ** 2).sum(-1).sqrt() for m in z}
    q = {m: torch.softmax(-d[m], dim=1) for m in z}
    S = {m: float(q[m].detach()[torch.arange(len(labels)), labels].sum()) for m in z}
    rho = S["audio"] / S["visual"]
    slow, dominant = ("visual", "audio") if rho > 1 else ("audio", "visual")
    g = 1.0 if weighting == "constant" else min(max(rho, 1 / rho) - 1, 1.0)
    pce = -torch.log(q[slow][torch.arange(len(labels)), labels]).mean()
    entropy = -(q[dominant] * torch.log(q[dominant])).sum(1).mean()
    fused = F.cross_entropy(torch.cat([z["audio"], z["visual"]], 1) @ W.T + b, labels)
    return fused + alpha * g * pce - per_weight * g * entropy, rho, slow


def prototypes_by_hand(model, split) -> dict:
    """Class means of each modality's features over the whole split (prototype_fraction 1)."""
    with torch.no_grad():
        z = {"audio": split.audio @ model.encoders["audio"].linear.weight.T,
             "visual": split.visual @ model.encoders["visual"].linear.weight.T}
    return {m: torch.stack([z[m][split.label == k].mean(0) for k in range(3)]) for m in z}


@pytest.mark.parametrize("weighting, per_weight", [("constant", 0.0), ("ratio", 0.0), ("ratio", 0.3),
                                                   ("constant", 0.3)])
def test_one_step_is_the_paper_loss_gradient_by_hand(weighting, per_weight):
    split, model = linear_split(), linear_model()
    batch = whole(linear_split(n=6, seed=2))
    method = pmr(alpha=2.0, pce_weighting=weighting, per_weight=per_weight)
    method.on_epoch_start(model, split, StepState(0, 0, CPU))
    prototypes = prototypes_by_hand(model, split)
    for m in prototypes:
        torch.testing.assert_close(method.prototypes[m], prototypes[m], rtol=0, atol=1e-12)
    reference = copy.deepcopy(model)
    loss, rho, slow = paper_loss(reference, batch, prototypes, 2.0, weighting, per_weight)
    loss.backward()
    assert rho != 1.0
    stats, delta = sgd_step(method, model, batch)
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-12)
    assert stats["ratio/prototype"] == pytest.approx(rho, rel=1e-12)
    assert stats[f"coefficient/{slow}"] > 0 and stats[f"coefficient/{'audio' if slow == 'visual' else 'visual'}"] == 0
    for name, p in reference.named_parameters():
        torch.testing.assert_close(delta[name], p.grad, rtol=0, atol=1e-12, msg=name)


def test_the_audio_slow_case_too():
    """Visual clean and audio noisy: audio classifies worse by prototypes and gets the extra loss."""
    generator = torch.Generator().manual_seed(5)
    label = torch.arange(12) % 3
    split = TensorSplit(audio=torch.randn(12, 4, generator=generator, dtype=torch.float64) * 3.0,
                        visual=torch.randn(3, 5, generator=generator, dtype=torch.float64)[label] * 3.0
                        + 0.1 * torch.randn(12, 5, generator=generator, dtype=torch.float64),
                        label=label)
    model, method = linear_model(seed=2), pmr(alpha=1.0)
    method.on_epoch_start(model, split, StepState(0, 0, CPU))
    reference = copy.deepcopy(model)
    loss, rho, slow = paper_loss(reference, whole(split), prototypes_by_hand(model, split), 1.0)
    loss.backward()
    assert slow == "audio" and rho < 1
    stats, delta = sgd_step(method, model, whole(split))
    assert stats["coefficient/audio"] == 1.0 and stats["coefficient/visual"] == 0.0
    for name, p in reference.named_parameters():
        torch.testing.assert_close(delta[name], p.grad, rtol=0, atol=1e-12, msg=name)


def test_a_sample_at_its_prototype_has_a_finite_gradient():
    """Features exactly at a prototype: distance 0, whose square root has no derivative; the step stays finite."""
    split, model = linear_split(visual_noise=0.0), linear_model()
    split.audio[:] = split.audio[:3][split.label]  # every audio sample of a class identical: d = 0 to its prototype
    method = pmr()
    method.on_epoch_start(model, split, StepState(0, 0, CPU))
    stats, delta = sgd_step(method, model, whole(split))
    assert math.isfinite(stats["loss"]) and all(torch.isfinite(d).all() for d in delta.values())


def joint_gradient(model, batch) -> dict:
    reference = copy.deepcopy(model)
    F.cross_entropy(reference(batch).logits, batch["label"]).backward()
    return {n: p.grad for n, p in reference.named_parameters()}


def test_outside_the_window_and_at_a_tie_it_is_joint_training():
    split, batch = linear_split(), whole(linear_split(n=6, seed=2))
    model, method = linear_model(), pmr(modulation_window=(2, 5), per_weight=0.5)
    method.on_epoch_start(model, split, StepState(6, 0, CPU))
    expected = joint_gradient(model, batch)
    stats, delta = sgd_step(method, model, batch, epoch=6)
    assert stats["modulated"] == 0.0 and stats["coefficient/visual"] == 0.0
    for name, grad in expected.items():
        torch.testing.assert_close(delta[name], grad, rtol=0, atol=1e-12, msg=name)
    # every class prototype the same: q uniform for both modalities, S_a = S_v, rho = 1: neither is slow
    model, method = linear_model(), pmr()
    method.prototypes = {"audio": torch.ones(3, 3, dtype=torch.float64),
                         "visual": torch.zeros(3, 3, dtype=torch.float64)}
    expected = joint_gradient(model, batch)
    stats, delta = sgd_step(method, model, batch)
    assert stats["ratio/prototype"] == 1.0 and stats["modulated"] == 1.0
    for name, grad in expected.items():
        torch.testing.assert_close(delta[name], grad, rtol=0, atol=1e-12, msg=name)


def test_per_acts_only_in_its_first_epochs():
    split, batch = linear_split(), whole(linear_split(n=6, seed=2))
    for epoch, expect_per in ((2, True), (3, False)):
        model, method = linear_model(), pmr(per_weight=0.5, per_epochs=3, modulation_window=(0, 70))
        method.on_epoch_start(model, split, StepState(epoch, 0, CPU))
        reference = copy.deepcopy(model)
        loss, _, slow = paper_loss(reference, batch, method.prototypes, 2.0, per_weight=0.5 if expect_per else 0.0)
        loss.backward()
        stats, delta = sgd_step(method, model, batch, epoch=epoch)
        dominant = "audio" if slow == "visual" else "visual"
        assert stats[f"per_coefficient/{dominant}"] == (0.5 if expect_per else 0.0)
        for name, p in reference.named_parameters():
            torch.testing.assert_close(delta[name], p.grad, rtol=0, atol=1e-12, msg=name)


# ---------------------------------------------------------------- the prototype subset and the state

def test_the_prototype_subset_is_deterministic_covers_every_class_and_leaves_the_rng_alone(tiny_dataset):
    torch.manual_seed(0)
    model = MultimodalModel(tiny_dataset.num_classes, width=4).train()
    method = PMR(TrainConfig.build(method="pmr", batch_size=16, prototype_fraction=0.01, seed=3))
    rng = torch.get_rng_state()
    method.on_epoch_start(model, tiny_dataset.train, StepState(4, 0, CPU))
    first = {m: c.clone() for m, c in method.prototypes.items()}
    assert torch.equal(torch.get_rng_state(), rng) and model.training
    # the rule, written out: the order a generator seeded by (seed + 1) * 1000003 + epoch draws; its first
    # n samples, n the smallest number from ceil(0.01 * 96) = 1 on with all six classes among them
    order = torch.randperm(len(tiny_dataset.train), generator=torch.Generator().manual_seed(4 * 1_000_003 + 4))
    labels = tiny_dataset.train.label[order]
    taken = next(n for n in range(1, len(order) + 1) if len(set(labels[:n].tolist())) == tiny_dataset.num_classes)
    assert method.prototype_samples == taken > 6
    model.eval()
    with torch.no_grad():
        index = order[:taken]
        batch = {"audio": tiny_dataset.train.audio[index], "visual": tiny_dataset.train.visual[index]}
        features = model.encode(batch)
    model.train()
    for m in first:
        expected = torch.stack([features[m][labels[:taken] == k].mean(0) for k in range(tiny_dataset.num_classes)])
        torch.testing.assert_close(first[m], expected, rtol=1e-5, atol=1e-6)
        assert torch.isfinite(first[m]).all()
    again = PMR(TrainConfig.build(method="pmr", batch_size=16, prototype_fraction=0.01, seed=3))
    again.on_epoch_start(model, tiny_dataset.train, StepState(4, 0, CPU))
    assert all(torch.equal(again.prototypes[m], first[m]) for m in first)


def test_the_momentum_mixes_the_new_prototypes_with_the_last_ones():
    split = linear_split()
    model = linear_model()
    method = pmr(prototype_momentum=0.2)
    method.on_epoch_start(model, split, StepState(0, 0, CPU))
    old = {m: c.clone() for m, c in method.prototypes.items()}
    with torch.no_grad():
        model.encoders["audio"].linear.weight.mul_(2.0)
        model.encoders["visual"].linear.weight.add_(0.5)
    method.on_epoch_start(model, split, StepState(1, 0, CPU))
    new = prototypes_by_hand(model, split)
    for m in old:
        torch.testing.assert_close(method.prototypes[m], 0.8 * new[m] + 0.2 * old[m], rtol=0, atol=1e-12)


def test_the_state_round_trips_and_resumes_the_next_step():
    split, batch = linear_split(), whole(linear_split(n=6, seed=2))
    model, method = linear_model(), pmr(prototype_momentum=0.2)
    method.on_epoch_start(model, split, StepState(0, 0, CPU))
    saved_model, saved = copy.deepcopy(model), copy.deepcopy(method.state_dict())
    method.on_epoch_start(model, split, StepState(1, 0, CPU))
    _, delta = sgd_step(method, model, batch, epoch=1)
    resumed = pmr(prototype_momentum=0.2)
    resumed.load_state_dict(saved, CPU)
    resumed.on_epoch_start(saved_model, split, StepState(1, 0, CPU))
    _, delta_resumed = sgd_step(resumed, saved_model, batch, epoch=1)
    assert all(torch.equal(delta[n], delta_resumed[n]) for n in delta)
    assert all(torch.equal(resumed.prototypes[m], method.prototypes[m]) for m in method.prototypes)


def test_pmr_refuses_a_unimodal_model_a_step_without_prototypes_and_bad_options():
    assert METHODS["pmr"] is PMR
    with pytest.raises(ConfigError, match="PMR needs an audio and a visual encoder"):
        pmr().prepare_model(MultimodalModel(3, modalities=("visual",), width=4))
    with pytest.raises(RuntimeError, match="on_epoch_start"):
        sgd_step(pmr(), linear_model(), whole(linear_split()))
    with pytest.raises(ConfigError, match="--modulation-window must be START END with START <= END"):
        TrainConfig.build(method="pmr", modulation_window=(5, 2))
    with pytest.raises(ConfigError, match="--prototype-momentum must be between 0 and 1"):
        TrainConfig.build(method="pmr", prototype_momentum=1.5)
    with pytest.raises(ConfigError, match="--prototype-fraction must be > 0.0"):
        TrainConfig.build(method="pmr", prototype_fraction=0.0)
    with pytest.raises(ConfigError, match="--pce-weighting: unknown value 'tanh'"):
        TrainConfig.build(method="pmr", pce_weighting="tanh")
