"""UMT and UME ("On Uni-Modal Feature Learning in Supervised Multi-Modal Learning", ICML 2023): UMT's update
against the gradient of CE + lambda * MSE computed by hand, its distillation gradient in closed form, teachers
that stay fixed (the re-implementation's train-mode teachers drift), the named runs loaded; UME's logits
against the mean of the two unimodal runs' logits, and a run that changes nothing."""
import copy

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig, fit
from mmlesson.engine import evaluate, load_run
from mmlesson.errors import ConfigError
from mmlesson.identity import run_identity
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.umt import distillation_losses, ensemble_head
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

MODALITIES = ("audio", "visual")


def small(**overrides):
    options = dict(data_knobs=TINY_KNOBS, width=4, epochs=2, batch_size=16, probe=False, progress="off", device="cpu")
    return TrainConfig.build(**{**options, **overrides})


@pytest.fixture(scope="module")
def unimodal_runs(tmp_path_factory, tiny_dataset):
    root = tmp_path_factory.mktemp("teachers")
    for modality in MODALITIES:
        fit(small(method="unimodal", modality=modality, out=str(root / modality)), dataset=tiny_dataset)
    return (str(root / "audio"), str(root / "visual"))


def umt_model(tiny_dataset, distill_weight, teacher_seed=1, feature_scale=None):
    """A width-4 UMT model (student seeded 0) whose teachers are the encoders of another seeded model, with
    default batch-norm statistics (no run needed: ``initialise`` is not called)."""
    config = small(method="umt", encoders_from=("unused-audio", "unused-visual"), distill_weight=distill_weight)
    method = METHODS["umt"](config)
    torch.manual_seed(0)
    model = method.prepare_model(MultimodalModel(tiny_dataset.num_classes, width=4, feature_scale=feature_scale))
    torch.manual_seed(teacher_seed)
    other = MultimodalModel(tiny_dataset.num_classes, width=4)
    for m in MODALITIES:
        model.teachers[m].load_state_dict(other.encoders[m].state_dict())
    return method, model


def sgd_step(method, model, batch, lr=0.1):
    optimizer = torch.optim.SGD(method.trainable(model, 0), lr=lr, momentum=0.0, weight_decay=0.0)
    return method.training_step(model, batch, optimizer, StepState(epoch=0, step=0, device=torch.device("cpu")))


# ----------------------------------------------------------------------------------------------------- pure parts

def test_distillation_loss_is_the_mean_squared_difference_by_hand():
    features = {"audio": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "visual": torch.tensor([[1.0, 1.0, 1.0]])}
    targets = {"audio": torch.zeros(2, 2), "visual": torch.tensor([[1.0, 0.0, 4.0]])}
    losses = distillation_losses(features, targets)
    assert losses["audio"].item() == pytest.approx((1 + 4 + 9 + 16) / 4)  # mean over B x D
    assert losses["visual"].item() == pytest.approx((0 + 1 + 9) / 3)


def test_the_ensemble_head_halves_each_unimodal_layer_and_averages_the_biases():
    weights = {"audio": torch.tensor([[2.0, 4.0], [0.0, -2.0]]), "visual": torch.tensor([[6.0], [8.0]])}
    biases = {"audio": torch.tensor([1.0, -1.0]), "visual": torch.tensor([3.0, 5.0])}
    weight, bias = ensemble_head(weights, biases)
    assert torch.equal(weight, torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]]))
    assert torch.equal(bias, torch.tensor([2.0, 2.0]))


# ------------------------------------------------------------------------------------------------------------ UMT

@pytest.mark.parametrize("distill_weight, scale", [(0.0, {}), (0.3, {}), (10.0, {}), (0.3, {"audio": 2.0, "visual": 0.5})])
def test_umt_update_is_the_hand_gradient_of_ce_plus_lambda_mse(tiny_dataset, tiny_batch, distill_weight, scale):
    """One SGD step (lr 0.1, no momentum, no decay) equals theta - lr * grad of
    L = CE(W [z_a; z_v] + b, y) + lambda * sum_m mean((z_m - t_m)^2), written out here with autograd; with a fixed
    feature scale s_m both z_m and t_m are the encoder outputs times s_m."""
    method, model = umt_model(tiny_dataset, distill_weight, feature_scale=scale)
    reference = copy.deepcopy(model)
    model.train()
    stats = sgd_step(method, model, tiny_batch)

    reference.train()
    reference.teachers.eval()
    student = {name: p for name, p in reference.named_parameters() if not name.startswith("teachers.")}
    s = {m: scale.get(m, 1.0) for m in MODALITIES}
    z = {m: reference.encoders[m](tiny_batch[m]) * s[m] for m in MODALITIES}
    logits = reference.fusion.head(torch.cat([z["audio"], z["visual"]], dim=1))
    labels = tiny_batch["label"]
    ce = -F.log_softmax(logits, dim=1)[torch.arange(len(labels)), labels].mean()
    with torch.no_grad():
        t = {m: reference.teachers[m](tiny_batch[m]) * s[m] for m in MODALITIES}
    mse = sum(((z[m] - t[m]) ** 2).sum() / z[m].numel() for m in MODALITIES)
    loss = ce + distill_weight * mse
    grads = torch.autograd.grad(loss, list(student.values()), allow_unused=True)

    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-5)
    assert stats["loss_fused"] == pytest.approx(ce.item(), rel=1e-5)
    after = dict(model.named_parameters())
    for (name, p), g in zip(student.items(), grads):
        expected = p.detach() - 0.1 * (g if g is not None else torch.zeros_like(p))
        torch.testing.assert_close(after[name].detach(), expected, rtol=1e-5, atol=1e-6, msg=name)


def test_the_distillation_gradient_at_the_features_is_two_lambda_z_minus_t_over_b_d(tiny_dataset, tiny_batch):
    """d/dz_m of lambda * mean((z_m - t_m)^2) = 2 lambda (z_m - t_m) / (B D): the gradient reaching each encoder's
    output with lambda, less the one without (the cross-entropy's, the same forward pass), is that."""
    captured = {}

    def gradient_at_features(distill_weight):
        method, model = umt_model(tiny_dataset, distill_weight)
        outputs, grads = {}, {}
        for m in MODALITIES:
            def keep(module, inputs, output, m=m):
                outputs[m] = output.detach().clone()
                output.register_hook(lambda g: grads.__setitem__(m, g.clone()))
            model.encoders[m].register_forward_hook(keep)
        model.train()
        sgd_step(method, model, tiny_batch)
        captured["teachers"] = model.teachers
        return outputs, grads

    lam = 2.5
    z, with_distill = gradient_at_features(lam)
    z_without, without = gradient_at_features(0.0)
    teachers = captured["teachers"].eval()
    for m in MODALITIES:
        assert torch.equal(z[m], z_without[m])
        with torch.no_grad():
            t = teachers[m](tiny_batch[m])
        closed_form = 2 * lam * (z[m] - t) / z[m].numel()
        torch.testing.assert_close(with_distill[m] - without[m], closed_form, rtol=1e-4, atol=1e-7)


def test_a_student_equal_to_its_teacher_gets_no_distillation_gradient(tiny_dataset, tiny_batch):
    """Edge case: z_m = t_m (same weights, both in evaluation mode) makes the distillation term and its gradient
    exactly zero, so the step is the lambda = 0 step."""
    updated = {}
    for distill_weight in (0.0, 10.0):
        method, model = umt_model(tiny_dataset, distill_weight)
        for m in MODALITIES:
            model.teachers[m].load_state_dict(model.encoders[m].state_dict())
        model.eval()
        stats = sgd_step(method, model, tiny_batch)
        assert stats["loss_distill/audio"] == 0.0 and stats["loss_distill/visual"] == 0.0
        updated[distill_weight] = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(updated[0.0][k], updated[10.0][k]) for k in updated[0.0])


def test_teachers_stay_fixed_in_evaluation_mode_when_the_model_trains(tiny_dataset, tiny_batch):
    """The re-implementation calls its teachers in training mode: batch statistics, and running statistics that
    drift. Here a teacher is a fixed function: after steps in training mode its weights and batch-norm buffers are
    unchanged and it has no gradient; a training-mode call would have moved the buffers."""
    method, model = umt_model(tiny_dataset, 10.0)
    before = copy.deepcopy(model.teachers.state_dict())
    model.train()
    for _ in range(3):
        sgd_step(method, model, tiny_batch)
    after = model.teachers.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None and not p.requires_grad for p in model.teachers.parameters())
    assert not model.teachers.training
    drifting = copy.deepcopy(model.teachers["audio"]).train()
    with torch.no_grad():
        drifting(tiny_batch["audio"])
    moved = drifting.state_dict()
    assert any(not torch.equal(moved[k], before[f"audio.{k}"]) for k in moved if "running" in k)


def test_umt_loads_the_named_runs_as_teachers_and_trains_its_student_from_joints_start(unimodal_runs, tiny_dataset,
                                                                                      tmp_path):
    result = fit(small(method="umt", encoders_from=unimodal_runs, out=str(tmp_path / "umt")), dataset=tiny_dataset)
    started = fit(small(method="umt", encoders_from=unimodal_runs), dataset=tiny_dataset, stop_after=0).model
    joint = fit(small(method="joint"), dataset=tiny_dataset, stop_after=0).model
    for modality, run_dir in zip(MODALITIES, unimodal_runs):
        alone = load_run(run_dir, dataset=tiny_dataset).model.encoders[modality].state_dict()
        teacher = result.model.teachers[modality].state_dict()
        assert alone.keys() == teacher.keys() and all(torch.equal(alone[k], teacher[k]) for k in alone)
        fresh, joint_start = started.encoders[modality].state_dict(), joint.encoders[modality].state_dict()
        assert all(torch.equal(fresh[k], joint_start[k]) for k in fresh)  # from scratch, as joint training starts
        student = result.model.encoders[modality].state_dict()
        assert any(not torch.equal(student[k], alone[k]) for k in alone)  # the student is not its teacher
    history = result.metrics["history"][-1]["train"]
    assert set(history["loss_distill"]) == set(MODALITIES)


def test_umt_identity_names_the_teachers_by_hash_and_holds_the_weight(unimodal_runs, tiny_dataset):
    identities = {}
    for weight in (10.0, 1.0):
        config = small(method="umt", encoders_from=unimodal_runs, distill_weight=weight)
        identities[weight] = run_identity(config, METHODS["umt"](config), tiny_dataset.identity)["options"]
    assert identities[10.0]["distill_weight"] == 10.0 and identities[1.0]["distill_weight"] == 1.0
    assert identities[10.0]["encoders_from"] == identities[1.0]["encoders_from"]
    assert not any("/" in h for h in identities[10.0]["encoders_from"])  # hashes, not paths


def test_umt_and_ume_refuse_missing_runs_and_bad_weights(unimodal_runs, tiny_dataset):
    for method in ("umt", "ume"):
        with pytest.raises(ConfigError, match=f"method '{method}' needs --encoders-from AUDIO_RUN VISUAL_RUN"):
            small(method=method)
    with pytest.raises(ConfigError, match="--distill-weight"):
        small(method="umt", encoders_from=unimodal_runs, distill_weight=-1.0)
    swapped = small(method="umt", encoders_from=tuple(reversed(unimodal_runs)))
    with pytest.raises(ConfigError, match="needs a unimodal audio run"):
        fit(swapped, dataset=tiny_dataset)


# ------------------------------------------------------------------------------------------------------------ UME

def test_ume_logits_are_the_mean_of_the_unimodal_runs_logits(unimodal_runs, tiny_dataset, tmp_path):
    result = fit(small(method="ume", encoders_from=unimodal_runs, out=str(tmp_path / "ume")), dataset=tiny_dataset)
    alone = {m: load_run(run_dir, dataset=tiny_dataset).model.eval() for m, run_dir in zip(MODALITIES, unimodal_runs)}
    ensemble = result.model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for batch in tiny_dataset.test.batches(16):
            logits = {m: alone[m](batch).logits for m in MODALITIES}
            expected = (logits["audio"] + logits["visual"]) / 2
            output = ensemble(batch)
            scale = float(expected.abs().max())
            torch.testing.assert_close(output.logits, expected, rtol=1e-5, atol=1e-5 * scale)
            # a branch is the concat head with the other modality zeroed: half the unimodal logits plus the mean bias
            b_v = alone["visual"].fusion.head.bias
            torch.testing.assert_close(output.logits_per_modality["audio"], (logits["audio"] + b_v) / 2,
                                       rtol=1e-5, atol=1e-5 * scale)
            correct += int((expected.argmax(1) == batch["label"]).sum())
            count += len(batch["label"])
    assert result.metrics["final"]["test"]["acc"] == pytest.approx(correct / count)


def test_ume_runs_its_epochs_without_changing_anything(unimodal_runs, tiny_dataset):
    """Every parameter and batch-norm statistic after the run is what ``initialise`` loaded (the engine's
    training mode would otherwise move the running statistics), and every epoch measures the same model."""
    config = small(method="ume", encoders_from=unimodal_runs, epochs=3)
    loaded = fit(config, dataset=tiny_dataset, stop_after=0).model.state_dict()
    result = fit(config, dataset=tiny_dataset)
    final = result.model.state_dict()
    assert all(torch.equal(loaded[k], final[k]) for k in loaded)
    rows = result.metrics["history"]
    assert len({row["val"]["acc"] for row in rows}) == 1 and result.metrics["final"]["best_epoch"] == 0
    assert all(row["train"]["grad_norm"] == {"audio": 0.0, "visual": 0.0} for row in rows)
    val = evaluate(result.model, tiny_dataset.val, torch.device("cpu"), tiny_dataset.num_classes)
    assert val["acc"] == rows[0]["val"]["acc"]


def test_ume_refuses_a_head_it_cannot_fill_and_features_scaled_otherwise(unimodal_runs, tiny_dataset):
    with pytest.raises(ConfigError, match="use --fusion concat"):
        fit(small(method="ume", encoders_from=unimodal_runs, fusion="sum"), dataset=tiny_dataset)
    with pytest.raises(ConfigError, match="give UME the unimodal runs' --feature-scale"):
        fit(small(method="ume", encoders_from=unimodal_runs, feature_scale=(2.0, 1.0)), dataset=tiny_dataset)
