"""G-Blending: the weights from hand-made loss trajectories, the heads' losses measured on the splits it is
given, the blended loss's SGD step against the paper's loss by hand, the super-epoch schedule (uniform first,
fixed in between, estimated from the validation split), and the state a resumed run needs."""
import copy

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig, fit
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.g_blending import gblend_weights, head_losses
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

HEADS = ("fused", "audio", "visual")


def losses(**heads):
    """``{head: {"train": L^T, "val": L^V}}`` from ``head=(train, val)``."""
    return {k: {"train": t, "val": v} for k, (t, v) in heads.items()}


def test_weights_by_hand():
    before = losses(fused=(1.0, 1.5), audio=(1.0, 1.2), visual=(1.2, 1.6))  # gaps 0.5, 0.2, 0.4
    after = losses(fused=(0.6, 1.3), audio=(0.8, 1.1), visual=(0.6, 1.3))  # gaps 0.7, 0.3, 0.7
    # DeltaG = (0.2, 0.1, 0.3), DeltaO = (0.2, 0.1, 0.3): DeltaG / DeltaO^2 = (5, 10, 10/3), sum 55/3
    weights = gblend_weights(before, after)
    assert weights == pytest.approx({"fused": 3 / 11, "audio": 6 / 11, "visual": 2 / 11})
    assert list(weights) == list(HEADS)


def test_a_head_whose_held_out_loss_rose_gets_nothing_and_the_sign_of_the_overfitting_does_not_matter():
    before = losses(fused=(1.0, 1.0), audio=(1.0, 1.0), visual=(1.0, 1.0))  # gaps 0
    after = losses(fused=(0.2, 0.5),    # DeltaG 0.5, DeltaO = 0.3 - 0 = 0.3: 0.5 / 0.09
                   audio=(1.3, 1.0),    # DeltaG 0 (held-out loss unchanged): weight 0
                   visual=(1.1, 0.8))   # DeltaG 0.2, DeltaO = -0.3 - 0 = -0.3: 0.2 / 0.09
    weights = gblend_weights(before, after)
    assert weights == pytest.approx({"fused": 5 / 7, "audio": 0.0, "visual": 2 / 7})
    worse = losses(fused=(0.5, 1.1), audio=(0.5, 1.0), visual=(0.9, 1.4))  # no held-out loss fell
    assert gblend_weights(before, worse) is None


def test_equal_trajectories_tie_and_zero_overfitting_takes_all_the_weight():
    before = losses(fused=(1.0, 1.25), audio=(1.0, 1.25), visual=(1.0, 1.25))  # gaps 0.25 (exact binary numbers)
    same = losses(fused=(0.75, 1.0), audio=(0.75, 1.0), visual=(0.75, 1.0))
    assert gblend_weights(before, same) == pytest.approx({k: 1 / 3 for k in HEADS})
    # fused: DeltaG 0.25, DeltaO 0.25; audio and visual generalise (0.25, 0.5) with an unchanged gap: an
    # unbounded ratio, so they share the weight
    flat = losses(fused=(0.5, 1.0), audio=(0.75, 1.0), visual=(0.5, 0.75))
    assert gblend_weights(before, flat) == {"fused": 0.0, "audio": 0.5, "visual": 0.5}


# The heads' losses, the blended step and the schedule, on a tiny model

def tiny_config(**options):
    return TrainConfig.build(data_knobs=TINY_KNOBS, width=4, epochs=3, batch_size=16, probe=False, progress="off",
                             method="g_blending", **options)


def tiny_model(num_classes, method, dtype=torch.float64):
    torch.manual_seed(0)
    return method.prepare_model(MultimodalModel(num_classes, width=4)).to(dtype).train()


class DoubleSplit:
    """A split whose batches are float64, recording how it is read."""

    def __init__(self, split):
        self.split, self.calls = split, []

    def batches(self, batch_size, shuffle=False, generator=None, device="cpu"):
        self.calls.append({"shuffle": shuffle, "generator": generator})
        for batch in self.split.batches(batch_size, shuffle=shuffle, generator=generator, device=device):
            yield {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}


def whole_split(split):
    batches = list(split.batches(10_000))
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def mean_cross_entropy(logits, labels):
    """-mean log softmax(logits)[y], written out."""
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return float(-log_p[torch.arange(len(labels)), labels].mean())


@torch.no_grad()
def losses_by_hand(model, split, heads="separate"):
    """Each head's mean cross-entropy over the whole split in one batch, the model in evaluation mode."""
    model.eval()
    batch = whole_split(split)
    output = model(batch)
    unimodal = ({m: model.unimodal_heads[m](output.features[m]) for m in ("audio", "visual")} if heads == "separate"
                else output.logits_per_modality)
    model.train()
    return {"fused": mean_cross_entropy(output.logits, batch["label"]),
            **{m: mean_cross_entropy(unimodal[m], batch["label"]) for m in ("audio", "visual")}}


@pytest.mark.parametrize("heads", ["separate", "split"])
def test_head_losses_are_each_heads_mean_cross_entropy_in_evaluation_mode(tiny_dataset, heads):
    method = METHODS["g_blending"](tiny_config(unimodal_heads=heads))
    model = tiny_model(tiny_dataset.num_classes, method)
    split = DoubleSplit(tiny_dataset.val)
    measured = head_losses(model, split, torch.device("cpu"), heads, batch_size=20)  # 48 clips: 20 + 20 + 8
    assert model.training  # its mode is given back
    assert split.calls == [{"shuffle": False, "generator": None}]  # in order, no augmentation
    assert measured == pytest.approx(losses_by_hand(model, DoubleSplit(tiny_dataset.val), heads), rel=1e-12)


def test_one_sgd_step_on_the_blended_loss(tiny_dataset, tiny_batch):
    method = METHODS["g_blending"](tiny_config())
    model = tiny_model(tiny_dataset.num_classes, method)
    method.weights = {"fused": 0.5, "audio": 0.2, "visual": 0.3}
    batch = {k: v.double() if v.is_floating_point() else v for k, v in tiny_batch.items()}
    reference = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0, weight_decay=0.0)
    stats = method.training_step(model, batch, optimizer, StepState(0, 0, torch.device("cpu")))
    output = reference(batch)
    labels = batch["label"]
    loss = (0.5 * F.cross_entropy(output.logits, labels)
            + 0.2 * F.cross_entropy(reference.unimodal_heads["audio"](output.features["audio"]), labels)
            + 0.3 * F.cross_entropy(reference.unimodal_heads["visual"](output.features["visual"]), labels))
    loss.backward()
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-12)
    assert {k: stats[f"weight/{k}"] for k in HEADS} == {"fused": 0.5, "audio": 0.2, "visual": 0.3}
    for name, p in reference.named_parameters():
        torch.testing.assert_close(before[name] - dict(model.named_parameters())[name].detach(), p.grad,
                                   rtol=1e-9, atol=1e-13, msg=name)


def train_steps(method, model, split, steps, lr=0.05):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    batches = split.batches(16)
    for step in range(steps):
        method.training_step(model, next(batches), optimizer, StepState(0, step, torch.device("cpu")))


def test_uniform_first_then_fixed_within_a_super_epoch_then_estimated_on_the_validation_split(tiny_dataset):
    method = METHODS["g_blending"](tiny_config(super_epoch=2))
    model = tiny_model(tiny_dataset.num_classes, method)
    train, val = DoubleSplit(tiny_dataset.train), DoubleSplit(tiny_dataset.val)
    cpu = torch.device("cpu")

    start_train, start_val = losses_by_hand(model, train), losses_by_hand(model, val)
    train.calls.clear(), val.calls.clear()
    method.on_epoch_start(model, train, StepState(0, 0, cpu), validation_split=val)
    assert method.weights == {k: 1 / 3 for k in HEADS}
    assert len(train.calls) == 1 and len(val.calls) == 1  # each split read once
    train_steps(method, model, train, 6)

    kept = copy.deepcopy(method.state_dict())
    method.on_epoch_start(model, train, StepState(1, 6, cpu), validation_split=val)  # inside the super-epoch
    assert method.state_dict() == kept and len(val.calls) == 1
    train_steps(method, model, train, 6)

    now_train, now_val = losses_by_hand(model, train), losses_by_hand(model, val)
    method.on_epoch_start(model, train, StepState(2, 12, cpu), validation_split=val)
    scores = {}
    for k in HEADS:  # DeltaG / DeltaO^2 with the validation split as held-out data
        generalisation = start_val[k] - now_val[k]
        overfitting = (now_val[k] - now_train[k]) - (start_val[k] - start_train[k])
        scores[k] = max(generalisation, 0.0) / overfitting ** 2
    assert sum(scores.values()) > 0, "the test needs a head that generalised"
    expected = {k: s / sum(scores.values()) for k, s in scores.items()}
    assert method.weights == pytest.approx(expected, rel=1e-9)
    assert method.weights != pytest.approx({k: 1 / 3 for k in HEADS})


def test_state_dict_round_trip_gives_the_same_next_estimate(tiny_dataset):
    cpu = torch.device("cpu")
    method = METHODS["g_blending"](tiny_config(super_epoch=1))
    model = tiny_model(tiny_dataset.num_classes, method)
    train, val = DoubleSplit(tiny_dataset.train), DoubleSplit(tiny_dataset.val)
    method.on_epoch_start(model, train, StepState(0, 0, cpu), validation_split=val)
    train_steps(method, model, train, 6)
    method.on_epoch_start(model, train, StepState(1, 6, cpu), validation_split=val)
    train_steps(method, model, train, 6)

    resumed = METHODS["g_blending"](tiny_config(super_epoch=1))
    resumed.load_state_dict(copy.deepcopy(method.state_dict()), cpu)
    assert resumed.weights == method.weights
    for each in (method, resumed):
        each.on_epoch_start(model, train, StepState(2, 12, cpu), validation_split=val)
    assert resumed.state_dict() == method.state_dict()
    fresh = METHODS["g_blending"](tiny_config(super_epoch=1))  # without the state: uniform, no trajectory
    fresh.on_epoch_start(model, train, StepState(2, 12, cpu), validation_split=val)
    assert fresh.weights == {k: 1 / 3 for k in HEADS}


def test_no_validation_split_is_refused(tiny_dataset):
    method = METHODS["g_blending"](tiny_config(super_epoch=1))
    model = tiny_model(tiny_dataset.num_classes, method, torch.float32)
    with pytest.raises(ValueError, match="validation split"):
        method.on_epoch_start(model, tiny_dataset.train, StepState(0, 0, torch.device("cpu")))


def test_a_tiny_run_records_uniform_then_estimated_weights(tiny_dataset, tmp_path):
    run = fit(tiny_config(super_epoch=1, out=str(tmp_path / "run")), dataset=tiny_dataset)
    rows = [row["train"]["weight"] for row in run.metrics["history"]]
    assert rows[0] == pytest.approx({k: 1 / 3 for k in HEADS})
    for weights in rows:
        assert set(weights) == set(HEADS) and sum(weights.values()) == pytest.approx(1.0)
        assert all(w >= 0 for w in weights.values())
    assert any(weights != pytest.approx(rows[0]) for weights in rows[1:])
    assert run.metrics["config"]["options"] == {"super_epoch": 1, "unimodal_heads": "separate"}


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="--super-epoch must be a positive integer, got 0"):
        tiny_config(super_epoch=0)
    with pytest.raises(ConfigError, match="--unimodal-heads: unknown value 'shared'"):
        tiny_config(unimodal_heads="shared")
