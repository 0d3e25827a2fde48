"""ReconBoost: the schedule, the boosting loss and the reconcilement term against hand numbers, the
released-code trap (a reconcilement term with both inputs detached has no gradient), and one training step
of each phase against the update computed by hand from the paper's losses."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig
from mmlesson.errors import ConfigError
from mmlesson.methods import StepState
from mmlesson.methods.reconboost import (ReconBoost, boosting_loss, phase_of, reconboost_loss, reconcilement_loss,
                                         sample_weights)
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

LR = 0.1


# -- the schedule ------------------------------------------------------------------------------------

def test_the_schedule_alternates_boosting_phases_with_rectification():
    phases = [phase_of(e, boost_epochs=2, rectify_epochs=1) for e in range(7)]
    assert [(p.kind, p.modality, p.round, p.starts) for p in phases] == [
        ("boost", "audio", 0, True), ("boost", "audio", 0, False), ("rectify", "audio", 0, True),
        ("boost", "visual", 1, True), ("boost", "visual", 1, False), ("rectify", "visual", 1, True),
        ("boost", "audio", 2, True)]


def test_without_rectification_the_learners_alternate_and_the_first_can_be_visual():
    phases = [phase_of(e, boost_epochs=1, rectify_epochs=5, rectification=False, first="visual") for e in range(4)]
    assert [(p.kind, p.modality, p.round, p.starts) for p in phases] == [
        ("boost", "visual", 0, True), ("boost", "audio", 1, True), ("boost", "visual", 2, True),
        ("boost", "audio", 3, True)]


# -- the boosting loss -------------------------------------------------------------------------------

def test_sample_weights_and_boosting_loss_by_hand():
    labels = torch.tensor([0, 2])
    ensemble = torch.tensor([[math.log(3.0), 0.0, 0.0], [0.0, 0.0, 0.0]])  # q_y = 3/5 and 1/3
    current = torch.tensor([[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]])  # p_y = 1/3 and 1/4
    weights = [(5.0 - 0.6) / 3, (5.0 - 1 / 3) / 3]
    assert sample_weights(ensemble, labels, 5.0, 1.0).tolist() == pytest.approx(weights, rel=1e-6)
    expected = (weights[0] * math.log(3.0) + weights[1] * math.log(4.0)) / 2
    assert float(boosting_loss(current, ensemble, labels, 5.0, 1.0)) == pytest.approx(expected, rel=1e-6)


def test_the_boosting_gradient_is_the_reweighted_residual_and_the_ensemble_gets_none():
    torch.manual_seed(1)
    current = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    ensemble = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 3, 1, 1, 2])
    boosting_loss(current, ensemble, labels, 4.0, 1.5).backward()
    q_true = ensemble.detach().softmax(1)[torch.arange(5), labels]
    weights = (4.0 - 1.5 * q_true) / 4
    residual = current.detach().softmax(1) - F.one_hot(labels, 4)  # p - e_y
    torch.testing.assert_close(current.grad, weights[:, None] * residual / 5, rtol=0, atol=1e-7)
    assert ensemble.grad is None


def test_a_sample_the_others_are_sure_of_drops_out_when_w1_equals_w2():
    labels = torch.tensor([1, 0])
    ensemble = torch.tensor([[0.0, 1e4, 0.0], [0.0, 0.0, 0.0]])  # q_y = 1 for the first sample
    assert sample_weights(ensemble, labels, 1.0, 1.0).tolist() == pytest.approx([0.0, (1 - 1 / 3) / 3])
    current = torch.zeros(2, 3, requires_grad=True)
    boosting_loss(current, ensemble, labels, 1.0, 1.0).backward()
    assert current.grad[0].abs().max() == 0.0 and current.grad[1].abs().max() > 0


# -- the reconcilement term --------------------------------------------------------------------------

def test_the_kl_reconcilement_by_hand_and_its_gradient():
    current = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], requires_grad=True)  # p = (1/2, 1/2), (3/4, 1/4)
    other = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # q = (3/4, 1/4), (1/2, 1/2)
    kl_first = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    kl_second = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    loss = reconcilement_loss(current, other, "kl")
    assert loss.item() == pytest.approx((kl_first + kl_second) / 2, rel=1e-6)
    loss.backward()
    expected = torch.tensor([[0.5 - 0.75, 0.5 - 0.25], [0.75 - 0.5, 0.25 - 0.5]]) / 2  # (p - q) / B
    torch.testing.assert_close(current.grad, expected, rtol=0, atol=1e-7)
    assert current.grad.abs().min() > 0


def test_the_mse_reconcilement_by_hand_and_its_gradient():
    current = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], requires_grad=True)
    other = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    p = torch.tensor([[0.5, 0.5], [0.75, 0.25]])
    q = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    loss = reconcilement_loss(current, other, "mse")
    assert loss.item() == pytest.approx(4 * 0.25 ** 2 / 4, rel=1e-6)  # every difference is 1/4, 4 entries
    loss.backward()
    upstream = 2 * (p - q) / 4  # d mean((p - q)^2) / dp
    expected = p * (upstream - (p * upstream).sum(1, keepdim=True))  # through the softmax's Jacobian
    torch.testing.assert_close(current.grad, expected, rtol=0, atol=1e-7)


def test_identical_learners_have_no_reconcilement_and_no_gradient_from_it():
    logits = torch.tensor([[1.0, -2.0, 0.5]], requires_grad=True)
    for form in ("kl", "mse"):
        loss = reconcilement_loss(logits, logits.detach().clone(), form)
        assert loss.item() == pytest.approx(0.0, abs=1e-7)
        (grad,) = torch.autograd.grad(loss, logits)
        assert grad.abs().max() < 1e-7


def test_the_released_term_has_both_inputs_detached_so_it_changes_no_gradient():
    """The trap: as released, the term is reported but trains nothing; "kl" and "mse" do."""
    torch.manual_seed(2)
    current = torch.randn(4, 3, requires_grad=True)
    ensemble, other, labels = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    detached = reconcilement_loss(current, other, "detached")
    assert not detached.requires_grad
    assert detached.item() == pytest.approx(reconcilement_loss(current, other, "mse").item())
    (boosting_alone,) = torch.autograd.grad(boosting_loss(current, ensemble, labels, 5.0, 1.0), current)
    gradients = {}
    for form in ("detached", "kl", "mse"):
        loss = reconboost_loss(current, ensemble, other, labels, 5.0, 1.0, 0.5, form)
        (gradients[form],) = torch.autograd.grad(loss["loss"], current)
    torch.testing.assert_close(gradients["detached"], boosting_alone, rtol=0, atol=0)
    for form in ("kl", "mse"):
        (term,) = torch.autograd.grad(0.5 * reconcilement_loss(current, other, form), current)
        assert term.abs().max() > 1e-3
        torch.testing.assert_close(gradients[form], boosting_alone + term, rtol=0, atol=1e-7)


def test_the_first_phase_has_no_reconcilement():
    current, ensemble, labels = torch.randn(3, 2), torch.randn(3, 2), torch.tensor([0, 1, 1])
    first = reconboost_loss(current, ensemble, None, labels, 5.0, 1.0, 0.5)
    assert set(first) == {"boosting", "loss"} and torch.equal(first["loss"], first["boosting"])


# -- the options and the model -----------------------------------------------------------------------

def config(**overrides):
    options = dict(data_knobs=TINY_KNOBS, width=4, epochs=6, batch_size=16, probe=False, progress="off",
                   device="cpu", method="reconboost", boost_epochs=1, rectify_epochs=1)
    return TrainConfig.build(**{**options, **overrides})


def test_bad_options_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"--ensemble-weight \(6.0\) must not exceed --label-weight \(5.0\)"):
        config(ensemble_weight=6.0)
    with pytest.raises(ConfigError, match="--reconcilement: unknown value 'off'"):
        config(reconcilement="off")
    with pytest.raises(ConfigError, match="--boost-rate must be > 0.0"):
        config(boost_rate=0.0)


@pytest.mark.parametrize("fusion", ["sum", "film", "gated"])
def test_fusions_other_than_concat_are_refused(fusion, tiny_dataset):
    model = MultimodalModel(tiny_dataset.num_classes, fusion=fusion, width=4)
    with pytest.raises(ConfigError, match="use --fusion concat") as error:
        ReconBoost(config(fusion=fusion)).prepare_model(model)
    assert "\n" not in str(error.value)


def prepared(tiny_dataset, method, seed=0):
    """A width-4 concat model in float64 with the method's boost rate, in training mode."""
    torch.manual_seed(seed)
    model = method.prepare_model(MultimodalModel(tiny_dataset.num_classes, width=4))
    return model.double().train()


def as_double(batch):
    return {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}


def test_the_model_computes_beta_times_the_concat_head_and_keeps_its_initialisation(tiny_dataset, tiny_batch):
    torch.manual_seed(0)
    plain = MultimodalModel(tiny_dataset.num_classes, width=4)
    boosted = ReconBoost(config(boost_rate=0.5)).prepare_model(copy.deepcopy(plain))
    assert boosted.fusion.boost_rate.item() == 0.5 and boosted.fusion.boost_rate.requires_grad
    plain.eval(), boosted.eval()
    with torch.no_grad():
        expected, output = plain(tiny_batch), boosted(tiny_batch)
    torch.testing.assert_close(output.logits, 0.5 * expected.logits, rtol=0, atol=1e-6)
    for m in ("audio", "visual"):  # the learners are the concat branches W_m z_m + b
        torch.testing.assert_close(output.logits_per_modality[m], expected.logits_per_modality[m], rtol=0, atol=0)


# -- one training step of each phase, by hand --------------------------------------------------------

def state_at(epoch, steps_per_epoch=4, within=0):
    return StepState(epoch=epoch, step=epoch * steps_per_epoch + within, device=torch.device("cpu"),
                     steps_per_epoch=steps_per_epoch)


def learners_by_hand(model):
    """The model's parts, read directly (not through the package's functions): ``W_a``, ``W_v`` (the blocks of
    the concat head's weight), ``b`` and ``beta``."""
    head = model.fusion.head
    d_audio = model.encoders["audio"].out_dim
    return head.weight[:, :d_audio], head.weight[:, d_audio:], head.bias, model.fusion.boost_rate


def boosting_phase_by_hand(model, batch, modality, options, with_reconcilement):
    """The boosting phase's loss written from the paper: learner m = W_m z_m + b trained, the other frozen."""
    other = "visual" if modality == "audio" else "audio"
    w_audio, w_visual, b, beta = learners_by_hand(model)
    weight = {"audio": w_audio, "visual": w_visual}
    z_m = model.encoders[modality](batch[modality])
    with torch.no_grad():
        z_o = model.encoders[other](batch[other])
        f_o = z_o @ weight[other].detach().T + b.detach()
    f_m = z_m @ weight[modality].T + b
    labels, classes = batch["label"], f_m.shape[1]
    q = torch.softmax(beta.detach() * f_o, dim=1)  # the ensemble of the others, beta f_o
    log_p = torch.log_softmax(f_m, dim=1)
    rows = torch.arange(len(labels))
    per_sample = (options.label_weight - options.ensemble_weight * q[rows, labels]) / classes * -log_p[rows, labels]
    loss = per_sample.mean()
    if with_reconcilement:  # KL(softmax(f_o) || softmax(f_m)), batch mean
        p_o = torch.softmax(f_o, dim=1)
        loss = loss + options.reconcile_weight * (p_o * (torch.log(p_o) - log_p)).sum(1).mean()
    return loss


def sgd_by_hand(model, loss):
    """The parameters after one plain SGD step at ``LR`` on ``loss`` (those without gradient unchanged)."""
    loss.backward()
    return {n: (p - LR * p.grad if p.grad is not None else p).detach().clone() for n, p in model.named_parameters()}


def assert_parameters(model, expected, atol=1e-12):
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=0, atol=atol, msg=name)


@pytest.mark.parametrize("modality, epoch", [("audio", 4), ("visual", 2)])
def test_one_boosting_step_is_the_papers_update_by_hand(modality, epoch, tiny_dataset, tiny_batch):
    """Rounds after the first: boosting loss plus the KL reconcilement, the other learner untouched."""
    method = ReconBoost(config(boost_rate=0.7))
    model = prepared(tiny_dataset, method)
    batch = as_double(tiny_batch)
    reference = copy.deepcopy(model)
    loss = boosting_phase_by_hand(reference, batch, modality, method.options, with_reconcilement=True)
    expected = sgd_by_hand(reference, loss)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.0, weight_decay=0.0)
    stats = method.training_step(model, batch, optimizer, state_at(epoch))
    assert method.phase(epoch).kind == "boost" and method.phase(epoch).modality == modality
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-10)
    assert stats[f"boosting/{modality}"] == 1.0 and stats["rectification"] == 0.0
    assert_parameters(model, expected)
    other = "visual" if modality == "audio" else "audio"
    assert stats[f"grad_norm/{other}"] == 0.0 and stats[f"grad_norm/{modality}"] > 0
    assert all(p.grad is None for p in model.encoders[other].parameters()) and model.fusion.boost_rate.grad is None
    for name, buffer in model.named_buffers():  # batch-norm statistics moved as the hand pass moved them
        torch.testing.assert_close(buffer, dict(reference.named_buffers())[name], rtol=0, atol=1e-12, msg=name)


def test_the_reconcilement_gradient_in_a_step_is_the_hand_computed_one_and_not_zero(tiny_dataset, tiny_batch):
    """The step's gradient minus the boosting loss's own gradient is alpha (p_m - p_o) / B pushed back
    through the learner: non-zero, and zero with the release's detached term."""
    batch = as_double(tiny_batch)
    grads = {}
    for form in ("kl", "detached"):
        method = ReconBoost(config(reconcilement=form))
        model = prepared(tiny_dataset, method)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        method.training_step(model, batch, optimizer, state_at(2))  # visual boosting, round 1
        grads[form] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    reference = prepared(tiny_dataset, ReconBoost(config()))
    w_audio, w_visual, b, _ = learners_by_hand(reference)
    d_audio = reference.encoders["audio"].out_dim
    z_v = reference.encoders["visual"](batch["visual"])
    with torch.no_grad():
        f_a = reference.encoders["audio"](batch["audio"]) @ w_audio.T + b
    f_v = z_v @ w_visual.T + b
    logit_gradient = 0.5 * (f_v.detach().softmax(1) - f_a.softmax(1)) / len(batch["label"])
    f_v.backward(logit_gradient)  # the reconcilement term's gradient, by hand, through the visual learner
    for name, p in reference.named_parameters():
        if name.startswith("encoders.audio") or name == "fusion.boost_rate":
            continue
        difference = grads["kl"][name] - grads["detached"][name]
        if name == "fusion.head.weight":  # only the visual block: the audio block is the frozen learner's
            assert difference[:, :d_audio].abs().max() == 0
        torch.testing.assert_close(difference, p.grad, rtol=0, atol=1e-12, msg=name)
    assert float(reference.fusion.head.weight.grad.abs().max()) > 1e-6


def test_the_first_boosting_phase_has_no_reconcilement_term(tiny_dataset, tiny_batch):
    method = ReconBoost(config())
    model = prepared(tiny_dataset, method)
    batch = as_double(tiny_batch)
    reference = copy.deepcopy(model)
    expected = sgd_by_hand(reference, boosting_phase_by_hand(reference, batch, "audio", method.options, False))
    stats = method.training_step(model, batch, torch.optim.SGD(model.parameters(), lr=LR), state_at(0))
    assert_parameters(model, expected)
    assert "loss_reconcilement/audio" not in stats and stats["loss"] == stats["loss_boosting/audio"]


def test_one_rectification_step_trains_the_whole_ensemble_and_beta(tiny_dataset, tiny_batch):
    method = ReconBoost(config(boost_rate=1.3))
    model = prepared(tiny_dataset, method)
    batch = as_double(tiny_batch)
    reference = copy.deepcopy(model)
    w_audio, w_visual, b, beta = learners_by_hand(reference)
    z_a, z_v = reference.encoders["audio"](batch["audio"]), reference.encoders["visual"](batch["visual"])
    ensemble = beta * (z_a @ w_audio.T + z_v @ w_visual.T + b)  # beta (f_a + f_v), the bias counted once
    loss = F.cross_entropy(ensemble, batch["label"])
    expected = sgd_by_hand(reference, loss)
    assert abs(reference.fusion.boost_rate.grad.item()) > 1e-6
    stats = method.training_step(model, batch, torch.optim.SGD(model.parameters(), lr=LR), state_at(3))
    assert method.phase(3).kind == "rectify" and stats["rectification"] == 1.0
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert_parameters(model, expected, atol=1e-6)  # joint training's step takes the loss in float32


def test_the_frozen_learner_stays_put_under_momentum_and_weight_decay(tiny_dataset, tiny_batch):
    method = ReconBoost(config())
    model = prepared(tiny_dataset, method)
    batch = as_double(tiny_batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=0.1)
    method.training_step(model, batch, optimizer, state_at(1))  # rectification: momentum on every parameter
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for within in range(2):  # audio boosting (round 2): its first step, then one more
        method.training_step(model, batch, optimizer, state_at(4, within=within))
    after = dict(model.named_parameters())
    for name, value in before.items():
        frozen = name.startswith("encoders.visual") or name == "fusion.boost_rate"
        assert torch.equal(after[name], value) == frozen, name
    d_audio = model.encoders["audio"].out_dim  # the visual block of the head is the frozen learner's
    assert torch.equal(after["fusion.head.weight"][:, d_audio:], before["fusion.head.weight"][:, d_audio:])


def test_each_phase_starts_with_fresh_momentum(tiny_dataset, tiny_batch):
    method = ReconBoost(config())
    batch = as_double(tiny_batch)
    model = prepared(tiny_dataset, method)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    method.training_step(model, batch, optimizer, state_at(1))  # rectification leaves momentum buffers
    fresh_model = copy.deepcopy(model)
    method.training_step(model, batch, optimizer, state_at(2))  # the first step of visual boosting
    method.training_step(fresh_model, batch, torch.optim.SGD(fresh_model.parameters(), lr=LR, momentum=0.9),
                         state_at(2))
    assert_parameters(model, {n: p.detach() for n, p in fresh_model.named_parameters()}, atol=0)
    # inside a phase the momentum is kept: a later step of the same epoch differs from a fresh optimiser's
    carried, fresh_model = copy.deepcopy(model), copy.deepcopy(model)
    kept = torch.optim.SGD(carried.parameters(), lr=LR, momentum=0.9)
    kept.load_state_dict(optimizer.state_dict())
    method.training_step(carried, batch, kept, state_at(2, within=1))
    method.training_step(fresh_model, batch, torch.optim.SGD(fresh_model.parameters(), lr=LR, momentum=0.9),
                         state_at(2, within=1))
    assert not torch.equal(carried.fusion.head.bias, fresh_model.fusion.head.bias)
