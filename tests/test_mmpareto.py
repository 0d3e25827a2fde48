"""MMPareto: the combination rule on hand vectors, one step on a tiny model against the per-loss gradients
combined by hand, and the regression test of the accumulated-gradient trap (weights stuck at 1/2)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.mmpareto import pareto_combine, pareto_weights
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

T = torch.tensor


def assert_tensors(actual, expected, tol=1e-12):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e.to(a.dtype), rtol=tol, atol=tol)


def test_conflict_by_hand():
    g1, g2 = [T([1.0, 0.0], dtype=torch.float64)], [T([-1.0, 2.0], dtype=torch.float64)]
    weights = pareto_weights(g1, g2)
    # cos = -1 / sqrt(5) < 0; k1 = (g2.g2 - g1.g2) / |g1 - g2|^2 = (5 + 1) / 8
    assert weights["cosine"] == pytest.approx(-1 / math.sqrt(5))
    assert weights["conflict"] == 1.0 and weights["k1"] == pytest.approx(0.75) and weights["k2"] == pytest.approx(0.25)
    # d = 2 (0.75 (1, 0) + 0.25 (-1, 2)) = (1, 1); |g1 + g2| = |(0, 2)| = 2; ratio 2 / sqrt(2)
    expected = [1.5 * math.sqrt(2) * T([1.0, 1.0], dtype=torch.float64)]
    assert_tensors(pareto_combine(g1, g2, gamma=1.5), expected)
    assert_tensors(pareto_combine(g1, g2, gamma=1.5, rescale="encoder"), expected)  # one tensor: the same


def test_no_conflict_gives_gamma_times_the_sum():
    g1, g2 = [T([1.0, 2.0]), T([[0.5]])], [T([3.0, 1.0]), T([[-0.25]])]  # cos > 0 over both tensors together
    weights = pareto_weights(g1, g2)
    cosine = 4.875 / math.sqrt(5.25 * 10.0625)  # g1.g2 / (|g1| |g2|)
    assert weights == {"cosine": pytest.approx(cosine), "conflict": 0.0, "k1": 0.5, "k2": 0.5}
    for rescale in ("tensor", "encoder"):
        assert_tensors(pareto_combine(g1, g2, gamma=1.5, rescale=rescale), [T([6.0, 4.5]), T([[0.375]])], tol=1e-6)


def test_two_tensors_rescaled_per_tensor_as_released_or_over_the_encoder():
    g1 = [T([1.0, 0.0], dtype=torch.float64), T([1.0], dtype=torch.float64)]
    g2 = [T([-1.0, 2.0], dtype=torch.float64), T([-1.0], dtype=torch.float64)]
    # g1.g2 = -1 - 1 = -2, |g1|^2 = 2, |g2|^2 = 6: k1 = (6 + 2) / (2 + 6 + 4) = 2/3
    assert pareto_weights(g1, g2)["k1"] == pytest.approx(2 / 3)
    d1, d2 = T([2 / 3, 4 / 3], dtype=torch.float64), T([2 / 3], dtype=torch.float64)  # 2 (k1 g1 + k2 g2)
    # per tensor: |(0, 2)| / |d1| = 2 / (sqrt(20) / 3) = 3 / sqrt(5) > 1; the second sum is 0: the floor 1
    expected = [1.5 * 3 / math.sqrt(5) * d1, 1.5 * d2]
    assert_tensors(pareto_combine(g1, g2, gamma=1.5), expected)
    # over the encoder: |(0, 2, 0)| / |(d1, d2)| = 2 / (sqrt(24) / 3) = sqrt(1.5)
    assert_tensors(pareto_combine(g1, g2, gamma=1.5, rescale="encoder"), [1.5 * math.sqrt(1.5) * d1,
                                                                        1.5 * math.sqrt(1.5) * d2])


def test_the_min_norm_weight_is_clipped_as_released():
    small = [T([-1e-4, 1e-4], dtype=torch.float64)]
    large = [T([1.0, 0.0], dtype=torch.float64)]
    unclipped = (2e-8 + 1e-4) / (1 + 2e-8 + 2e-4)  # k1 of (large, small): about 1e-4
    assert unclipped < 0.001
    low = pareto_weights(large, small)
    assert low["conflict"] == 1.0 and low["k1"] == 0.001 and low["k2"] == pytest.approx(0.999)
    high = pareto_weights(small, large)
    assert high["k1"] == 0.999 and high["k2"] == pytest.approx(0.001)


def test_a_zero_gradient_leaves_gamma_times_the_other():
    g = [T([1.0, -2.0], dtype=torch.float64), T([3.0], dtype=torch.float64)]
    zero = [torch.zeros(2, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)]
    for first, second in ((g, zero), (zero, g)):
        assert pareto_weights(first, second) == {"cosine": 0.0, "conflict": 0.0, "k1": 0.5, "k2": 0.5}
        for rescale in ("tensor", "encoder"):
            assert_tensors(pareto_combine(first, second, 1.5, rescale), [1.5 * x for x in g])
    assert_tensors(pareto_combine(zero, zero, 1.5), zero)  # nothing to rescale: zero, not NaN
    assert_tensors(pareto_combine(zero, zero, 1.5, "encoder"), zero)


def test_exactly_opposite_gradients_meet_at_zero_length_and_are_zeroed_not_nan():
    g1, g2 = [T([1.0, 2.0], dtype=torch.float64)], [T([-1.0, -2.0], dtype=torch.float64)]
    weights = pareto_weights(g1, g2)
    assert weights["cosine"] == pytest.approx(-1.0) and weights["k1"] == pytest.approx(0.5)
    assert_tensors(pareto_combine(g1, g2, 1.5), [torch.zeros(2, dtype=torch.float64)])


# One step on a tiny model against the paper's update written out by hand

def tiny_config(**options):
    return TrainConfig.build(data_knobs=TINY_KNOBS, width=4, epochs=1, batch_size=16, probe=False, progress="off",
                             method="mmpareto", **options)


def double_batch(batch):
    return {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}


def tiny_model(num_classes, heads, conflict):
    """A seeded width-4 model in float64 with MMPareto's structure; with ``conflict``, each unimodal head is
    the negative of the fused head's block for its modality, so that its loss pulls against the fused one."""
    torch.manual_seed(0)
    method = METHODS["mmpareto"](tiny_config(unimodal_heads=heads))
    model = method.prepare_model(MultimodalModel(num_classes, width=4)).double().train()
    if conflict:
        with torch.no_grad():
            for m, block in model.fusion.weight_blocks().items():
                if heads == "separate":
                    model.unimodal_heads[m].weight.copy_(-block)
                    model.unimodal_heads[m].bias.copy_(-model.fusion.head.bias)
    return method, model


def by_hand(model, batch, heads, gamma, rescale):
    """``{parameter name: gradient}`` of the paper's update: per-loss gradients from separate autograd calls,
    per encoder cosine, min-norm weights, direction and magnitude; the heads get the sum's gradient."""
    labels = batch["label"]
    output = model(batch)
    fused = F.cross_entropy(output.logits, labels)
    if heads == "separate":
        own = {m: F.cross_entropy(model.unimodal_heads[m](output.features[m]), labels) for m in ("audio", "visual")}
    else:
        own = {m: F.cross_entropy(output.logits_per_modality[m], labels) for m in ("audio", "visual")}
    expected, weights = {}, {}
    for m in ("audio", "visual"):
        names, params = zip(*model.encoders[m].named_parameters())
        g1 = torch.autograd.grad(fused, params, retain_graph=True)
        g2 = torch.autograd.grad(own[m], params, retain_graph=True)
        f1, f2 = torch.cat([g.flatten() for g in g1]), torch.cat([g.flatten() for g in g2])
        cosine = float(f1 @ f2 / (f1.norm() * f2.norm()))
        k1 = 0.5 if cosine >= 0 else min(max(float((f2 - f1) @ f2 / ((f1 - f2) @ (f1 - f2))), 0.001), 0.999)
        weights[m] = (cosine, k1)
        directions = [2 * (k1 * a + (1 - k1) * b) for a, b in zip(g1, g2)]
        if rescale == "tensor":
            updates = [gamma * max(float((a + b).norm() / d.norm()), 1.0) * d for a, b, d in zip(g1, g2, directions)]
        else:
            ratio = float((f1 + f2).norm() / torch.cat([d.flatten() for d in directions]).norm())
            updates = [gamma * max(ratio, 1.0) * d for d in directions]
        expected.update({f"encoders.{m}.{name}": u for name, u in zip(names, updates)})
    heads_only = [(n, p) for n, p in model.named_parameters() if not n.startswith("encoders.")]
    total = fused + own["audio"] + own["visual"]
    for (name, _), g in zip(heads_only, torch.autograd.grad(total, [p for _, p in heads_only])):
        expected[name] = g
    return expected, weights, total.item()


@pytest.mark.parametrize("heads, conflict, rescale", [("separate", True, "tensor"), ("separate", True, "encoder"),
                                                      ("separate", False, "tensor"), ("split", False, "tensor")])
def test_one_sgd_step_is_the_papers_update(tiny_dataset, tiny_batch, heads, conflict, rescale):
    _, model = tiny_model(tiny_dataset.num_classes, heads, conflict)
    method = METHODS["mmpareto"](tiny_config(unimodal_heads=heads, pareto_rescale=rescale, gamma=1.5))
    batch = double_batch(tiny_batch)
    reference = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0, weight_decay=0.0)
    stats = method.training_step(model, batch, optimizer, StepState(0, 0, torch.device("cpu")))
    expected, weights, loss = by_hand(reference, batch, heads, 1.5, rescale)
    assert stats["loss"] == pytest.approx(loss, rel=1e-12)
    assert set(expected) == set(before)
    for name, p in model.named_parameters():
        torch.testing.assert_close(before[name] - p.detach(), expected[name], rtol=1e-9, atol=1e-12, msg=name)
    for m, (cosine, k1) in weights.items():
        assert stats[f"cosine/{m}"] == pytest.approx(cosine, rel=1e-9)
        assert stats[f"weight_fused/{m}"] == pytest.approx(k1, rel=1e-9)
        assert stats[f"conflict/{m}"] == float(cosine < 0)
    if conflict:  # the min-norm branch was exercised for both encoders
        assert all(cosine < 0 for cosine, _ in weights.values())


def test_a_conflicting_batch_gets_min_norm_weights_not_one_half(tiny_dataset, tiny_batch):
    """Regression test of the accumulated-gradient trap: reading each encoder's gradients after backward passes
    that were not zeroed in between gives the same tensor g1 + g2 for both losses, cosine 1, weights 1/2."""
    method, model = tiny_model(tiny_dataset.num_classes, "separate", conflict=True)
    batch = double_batch(tiny_batch)
    reference = copy.deepcopy(model)
    stats = method.training_step(model, batch, torch.optim.SGD(model.parameters(), lr=0.0),
                                 StepState(0, 0, torch.device("cpu")))
    for m in ("audio", "visual"):
        assert stats[f"conflict/{m}"] == 1.0 and stats[f"cosine/{m}"] < 0
        assert abs(stats[f"weight_fused/{m}"] - 0.5) > 1e-3
    # what the trap computes: both "gradients" are the accumulated g1 + g2
    output = reference(batch)
    reference.zero_grad()
    audio_loss = F.cross_entropy(reference.unimodal_heads["audio"](output.features["audio"]), batch["label"])
    audio_loss.backward(retain_graph=True)
    F.cross_entropy(output.logits, batch["label"]).backward()
    accumulated = [p.grad.clone() for p in reference.encoders["audio"].parameters()]
    trapped = pareto_weights(accumulated, accumulated)
    assert trapped["cosine"] == pytest.approx(1.0) and trapped["k1"] == 0.5


def test_gamma_scales_the_encoders_only(tiny_dataset, tiny_batch):
    grads = {}
    for gamma in (1.0, 3.0):
        _, model = tiny_model(tiny_dataset.num_classes, "separate", conflict=False)
        method = METHODS["mmpareto"](tiny_config(gamma=gamma))
        method.training_step(model, double_batch(tiny_batch), torch.optim.SGD(model.parameters(), lr=0.0),
                             StepState(0, 0, torch.device("cpu")))
        grads[gamma] = {n: p.grad.clone() for n, p in model.named_parameters()}
    for name, g in grads[1.0].items():
        factor = 3.0 if name.startswith("encoders.") else 1.0
        torch.testing.assert_close(grads[3.0][name], factor * g, rtol=1e-9, atol=1e-14, msg=name)


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="--pareto-rescale: unknown value 'global'"):
        tiny_config(pareto_rescale="global")
    with pytest.raises(ConfigError, match="--gamma must be > 0.0"):
        tiny_config(gamma=0.0)
    with pytest.raises(ConfigError, match="--unimodal-heads: unknown value 'shared'"):
        tiny_config(unimodal_heads="shared")
