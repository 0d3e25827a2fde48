"""Diagnosing & Re-learning: purity and the re-learning strength against hand numbers, the soft
re-initialisation as the paper's convex mix, the diagnosis recomputed by hand from the encoders' features,
the schedule, the state a resumed run needs, and that only the training and validation splits are read."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans

from mmlesson import TrainConfig, fit
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods import diagnosing_relearning as dr
from mmlesson.methods.diagnosing_relearning import purity, relearn_strength, relearning_epochs, soft_reinitialise
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

TRAIN = dict(data_knobs=TINY_KNOBS, width=4, epochs=3, batch_size=16, probe=False, progress="off", device="cpu")
CPU = torch.device("cpu")


def config(**overrides):
    return TrainConfig.build(**{**TRAIN, "method": "diagnosing_relearning", "relearn_every": 2, **overrides})


def test_purity_by_hand():
    # cluster 0 holds classes 1, 1, 2 (2 agree); cluster 1 holds 0, 0 (2); cluster 2 holds 2 (1): 5 of 6
    assert purity([0, 0, 0, 1, 1, 2], [1, 1, 2, 0, 0, 2]) == pytest.approx(5 / 6)
    assert purity([2, 2, 0, 0, 1, 1], [0, 0, 1, 1, 2, 2]) == 1.0  # the cluster names do not matter
    assert purity([0, 0, 0, 0], [0, 1, 1, 2]) == 0.5  # one cluster: the share of the most frequent class
    assert purity([0, 0, 1, 1], [0, 1, 0, 1]) == 0.5  # ties: a cluster counts one of its tied classes
    assert purity([0, 1, 2, 3], [0, 0, 1, 1]) == 1.0  # singletons are pure
    with pytest.raises(ValueError, match="one cluster per label"):
        purity([0, 1], [0, 1, 2])


def test_relearn_strength_by_hand():
    assert relearn_strength(0.8, 0.5, 3.0) == pytest.approx(math.tanh(0.9))
    assert relearn_strength(0.5, 0.8, 3.0) == pytest.approx(math.tanh(0.9))  # |gap|: either sign
    assert relearn_strength(0.6, 0.6, 3.0) == 0.0  # no gap: the encoder keeps what it has learnt
    assert relearn_strength(0.9, 0.1, 0.0) == 0.0
    assert relearn_strength(1.0, 0.0, 100.0) == pytest.approx(1.0)  # saturates at a full re-initialisation


def test_the_schedule_is_every_e_r_epochs_at_most_r_times():
    assert relearning_epochs(20, 3, 90) == [20, 40, 60]  # the release's defaults
    assert relearning_epochs(20, 3, 16) == []  # the book's 16-epoch budget: never
    assert relearning_epochs(2, 3, 3) == [2]  # the tiny run: once
    assert relearning_epochs(1, 2, 10) == [1, 2]
    assert relearning_epochs(5, 0, 50) == []


@pytest.fixture
def model(tiny_dataset):
    torch.manual_seed(0)
    return MultimodalModel(tiny_dataset.num_classes, width=4).train()


def perturb(model, scale=0.05):
    """Move every parameter, as training would."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))


def test_soft_reinitialisation_is_the_convex_mix(model):
    encoder = model.encoders["audio"]
    initial = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    perturb(model)
    current = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    buffers = {n: b.clone() for n, b in encoder.named_buffers()}
    head, visual = copy.deepcopy(model.fusion.state_dict()), copy.deepcopy(model.encoders["visual"].state_dict())
    soft_reinitialise(encoder, initial, 0.3)
    for name, p in encoder.named_parameters():
        torch.testing.assert_close(p.detach(), 0.3 * initial[name] + 0.7 * current[name], rtol=0, atol=0)
    assert all(torch.equal(b, buffers[n]) for n, b in encoder.named_buffers())  # batch-norm statistics kept
    assert all(torch.equal(v, head[k]) for k, v in model.fusion.state_dict().items())  # the head untouched
    assert all(torch.equal(v, visual[k]) for k, v in model.encoders["visual"].state_dict().items())
    soft_reinitialise(encoder, initial, 1.0)
    assert all(torch.equal(p, initial[n]) for n, p in encoder.named_parameters())  # alpha = 1: back to the start
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    soft_reinitialise(encoder, {n: torch.zeros_like(p) for n, p in encoder.named_parameters()}, 0.0)
    assert all(torch.equal(p, before[n]) for n, p in encoder.named_parameters())  # alpha = 0: nothing moves


def hand_features(model, split):
    """Each encoder's features of every clip of ``split`` (evaluation mode, one batch)."""
    model.eval()
    with torch.no_grad():
        return model.encode({"audio": split.audio, "visual": split.visual})


def hand_purity(features, labels, num_classes, seed):
    """Min-max to [-1, 1] per feature, K-means into one cluster per class, then purity from the counts."""
    x = features.double()
    low, high = x.min(dim=0).values, x.max(dim=0).values
    span = torch.where(high > low, high - low, torch.ones_like(high))
    scaled = 2 * (x - low) / span - 1
    clusters = torch.as_tensor(KMeans(n_clusters=num_classes, n_init=10, random_state=seed).fit_predict(scaled.numpy()))
    counts = torch.zeros(num_classes, num_classes)
    counts.index_put_((clusters.long(), labels.long()), torch.ones(len(labels)), accumulate=True)
    return float(counts.max(dim=1).values.sum()) / len(labels)


def test_a_relearning_epoch_is_the_paper_update_recomputed_by_hand(model, tiny_dataset):
    cfg = config(relearn_lambda=3.0, seed=7)
    method = METHODS["diagnosing_relearning"](cfg)
    method.initialise(model)
    initial = {m: {n: p.detach().clone() for n, p in model.encoders[m].named_parameters()} for m in model.modalities}
    perturb(model)
    reference = copy.deepcopy(model)
    expected_alpha = {}
    for m in ("audio", "visual"):
        p_train = hand_purity(hand_features(reference, tiny_dataset.train)[m], tiny_dataset.train.label, 6, seed=7)
        p_val = hand_purity(hand_features(reference, tiny_dataset.val)[m], tiny_dataset.val.label, 6, seed=7)
        expected_alpha[m] = math.tanh(3.0 * abs(p_train - p_val))
    untouched = copy.deepcopy(model.state_dict())
    method.on_epoch_start(model, tiny_dataset.train, StepState(1, 0, CPU), validation_split=tiny_dataset.val)
    assert all(torch.equal(v, untouched[k]) for k, v in model.state_dict().items())  # epoch 1: not a re-learning one
    method.on_epoch_start(model, tiny_dataset.train, StepState(2, 0, CPU), validation_split=tiny_dataset.val)
    assert model.training  # the diagnosis leaves the model in the mode it found it in
    stats = method.epoch_stats
    for m in ("audio", "visual"):
        assert stats[f"relearn_strength/{m}"] == pytest.approx(expected_alpha[m], abs=1e-12)
        assert 0.0 <= stats[f"purity_train/{m}"] <= 1.0 and 0.0 <= stats[f"purity_val/{m}"] <= 1.0
        alpha = expected_alpha[m]
        for name, p in model.encoders[m].named_parameters():
            mixed = alpha * initial[m][name] + (1 - alpha) * untouched[f"encoders.{m}.{name}"]
            torch.testing.assert_close(p.detach(), mixed, rtol=0, atol=1e-7)
    assert any(expected_alpha[m] > 0 for m in expected_alpha)  # the check above moved something
    assert all(torch.equal(v, untouched[k]) for k, v in model.state_dict().items() if not k.startswith("encoders."))


def test_between_relearning_epochs_the_step_is_plain_fused_cross_entropy(model, tiny_batch):
    method = METHODS["diagnosing_relearning"](config())
    reference = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.0)
    stats = method.training_step(model, tiny_batch, optimizer, StepState(0, 0, CPU))
    loss = F.cross_entropy(reference(tiny_batch).logits, tiny_batch["label"])
    loss.backward()
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-6)
    updated = dict(model.named_parameters())
    for name, p in reference.named_parameters():
        torch.testing.assert_close(updated[name].detach(), p.detach() - 0.1 * p.grad, rtol=1e-5, atol=1e-7)


def test_the_initial_parameters_travel_in_the_state_so_a_resumed_run_relearns_identically(model, tiny_dataset):
    fresh = METHODS["diagnosing_relearning"](config())
    assert fresh.state_dict() == {"initial": None}  # nothing before initialise
    fresh.initialise(model)
    perturb(model)
    resumed = METHODS["diagnosing_relearning"](config())
    resumed.load_state_dict(copy.deepcopy(fresh.state_dict()), CPU)
    twin = copy.deepcopy(model)
    for method, target in ((fresh, model), (resumed, twin)):
        method.on_epoch_start(target, tiny_dataset.train, StepState(2, 0, CPU), validation_split=tiny_dataset.val)
    assert fresh.epoch_stats == resumed.epoch_stats
    weights, reference = model.state_dict(), twin.state_dict()
    assert all(torch.equal(weights[k], reference[k]) for k in weights)


def test_the_diagnosis_reads_the_training_and_validation_splits_never_test(tiny_dataset, monkeypatch):
    seen = []
    real = dr.extract_features

    def spy(model, split, device, *args, **kwargs):
        seen.append(split)
        return real(model, split, device, *args, **kwargs)

    monkeypatch.setattr(dr, "extract_features", spy)
    run = fit(config(), dataset=tiny_dataset)
    assert [s is tiny_dataset.train for s in seen] == [True, False] and seen[1] is tiny_dataset.val
    assert not any(s is tiny_dataset.test for s in seen)
    history = run.metrics["history"]
    assert "relearn_strength" not in history[0]["train"] and "relearn_strength" not in history[1]["train"]
    assert set(history[2]["train"]["relearn_strength"]) == {"audio", "visual"}  # logged in the re-learning epoch


def test_kmeans_is_deterministic_for_a_given_seed():
    features = torch.randn(60, 5, generator=torch.Generator().manual_seed(3))
    first = dr.kmeans_clusters(features, 4, random_state=11)
    assert (first == dr.kmeans_clusters(features, 4, random_state=11)).all()
    assert set(first.tolist()) <= {0, 1, 2, 3}
    constant = torch.cat([features, torch.ones(60, 1)], dim=1)  # a dead feature does not break the scaling
    assert len(dr.kmeans_clusters(constant, 4, random_state=11)) == 60


def test_a_validation_split_smaller_than_the_classes_is_refused(model, tiny_dataset):
    method = METHODS["diagnosing_relearning"](config())
    method.initialise(model)
    small = type(tiny_dataset.val)(tiny_dataset.val.audio[:4], tiny_dataset.val.visual[:4], tiny_dataset.val.label[:4])
    with pytest.raises(ConfigError, match="only 4 clips"):
        method.on_epoch_start(model, tiny_dataset.train, StepState(2, 0, CPU), validation_split=small)


def test_a_run_too_short_to_relearn_says_it_is_joint_training(model, tiny_dataset, capsys):
    method = METHODS["diagnosing_relearning"](config(relearn_every=20, epochs=16))
    method.initialise(model)
    before = copy.deepcopy(model.state_dict())
    for epoch in range(16):
        method.on_epoch_start(model, tiny_dataset.train, StepState(epoch, 0, CPU), validation_split=tiny_dataset.val)
    assert "never re-learns" in capsys.readouterr().err
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="--relearn-every must be a positive integer, got 0"):
        config(relearn_every=0)
    with pytest.raises(ConfigError, match="--relearn-lambda must be a number >= 0.0"):
        config(relearn_lambda=-1.0)
