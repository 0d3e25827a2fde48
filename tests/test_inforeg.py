"""InfoReg: the window detector on hand traces, the regulation strengths on hand scores, the Fisher trace,
one step against the update computed by hand (multitask loss plus the proximal term on the leading
encoder, by autograd), the closed window, the release's audio-only detector, and the state a resumed run
needs."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmlesson import TrainConfig
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.inforeg import (add_proximal_gradient, information_trace, regulation_strengths,
                                      true_class_score, window_growth)
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

CPU = torch.device("cpu")
LR = 0.1


def config(**overrides):
    return TrainConfig.build(**{**dict(data_knobs=TINY_KNOBS, width=4, epochs=3, batch_size=16, probe=False,
                                       progress="off", method="inforeg"), **overrides})


def test_window_growth_on_hand_traces():
    assert window_growth([]) == 1.0  # the first epoch: k = 1, as released
    # ten zeros before the traces: newer average (1+2+3+4)/10 = 1, older (1+2+3)/10 = 0.6
    assert window_growth([1.0, 2.0, 3.0, 4.0]) == pytest.approx((1.0 - 0.6) / 1.0)
    assert window_growth([5.0]) == pytest.approx(1.0)  # older average 0
    # two-epoch averages: newer (3+4)/2 = 3.5, older (2+3)/2 = 2.5
    assert window_growth([1.0, 2.0, 3.0, 4.0], average=2) == pytest.approx(1.0 / 3.5)
    assert window_growth([4.0, 3.0, 2.0, 1.0], average=2) == pytest.approx((1.5 - 2.5) / 1.5)  # falling: closed
    assert window_growth([2.0] * 12) == pytest.approx(0.0)  # a flat trace once the average is full
    assert window_growth([0.0, 0.0, 0.0]) == 0.0  # no information acquired: closed, not 0 / 0


def test_true_class_score_is_a_batch_sum():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # p(true) = 3/4 and 1/2
    assert true_class_score(logits, torch.tensor([0, 1])) == pytest.approx(1.25)


def test_regulation_strengths_by_hand():
    strength = {"audio": 0.95, "visual": 0.1}  # the release's constants
    both = {"audio": True, "visual": True}
    assert regulation_strengths({"audio": 3.0, "visual": 1.0}, both, strength) == pytest.approx(
        {"audio": 0.95 * math.exp(math.tanh(2.0)), "visual": 0.0})
    assert regulation_strengths({"audio": 1.0, "visual": 1.5}, both, strength) == pytest.approx(
        {"audio": 0.0, "visual": 0.1 * math.exp(math.tanh(0.5))})
    assert regulation_strengths({"audio": 2.0, "visual": 2.0}, both, strength) == {"audio": 0.0, "visual": 0.0}  # tie
    # the leader out of its window: nobody is regulated, even if the other is in its own
    assert regulation_strengths({"audio": 3.0, "visual": 1.0}, {"audio": False, "visual": True}, strength) == {
        "audio": 0.0, "visual": 0.0}
    assert regulation_strengths({"audio": 0.0, "visual": 64.0}, both, {"audio": 1.0, "visual": 1.0})["visual"] == \
        pytest.approx(math.e)  # a batch-sum gap saturates tanh: beta -> c e


def test_information_trace_sums_the_mean_squared_gradient_of_conv_and_linear_weights():
    encoder = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3, bias=True))
    conv, norm, linear = encoder[0], encoder[1], encoder[3]
    conv.weight.grad = torch.full_like(conv.weight, 2.0)  # mean g^2 = 4
    conv.bias.grad = torch.full_like(conv.bias, 10.0)  # a bias: left out
    norm.weight.grad = torch.full_like(norm.weight, 10.0)  # batch-norm: left out
    linear.weight.grad = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, 0.0]])  # mean g^2 = 10 / 6
    assert information_trace(encoder) == pytest.approx(4.0 + 10.0 / 6.0)
    assert information_trace(nn.Sequential(nn.Linear(2, 2))) == 0.0  # no gradient yet: nothing acquired


def test_a_frozen_encoder_gets_no_proximal_gradient():
    layer = nn.Linear(2, 2)
    layer.weight.requires_grad_(False)
    previous = {n: torch.zeros_like(p) for n, p in layer.named_parameters()}
    add_proximal_gradient(layer, previous, 2.0)
    assert layer.weight.grad is None
    torch.testing.assert_close(layer.bias.grad, 2.0 * layer.bias.detach())


@pytest.fixture
def model(tiny_dataset):
    torch.manual_seed(0)
    return MultimodalModel(tiny_dataset.num_classes, width=4).train()


def build(model, **options):
    """The method on ``model`` (its structure prepared), at the start of epoch 0."""
    method = METHODS["inforeg"](config(**options))
    method.prepare_model(model)
    method.on_epoch_start(model, None, StepState(0, 0, CPU))
    return method


def move_encoders(*models, scale=0.02):
    """Move every encoder parameter by the same known delta, as the epoch's earlier steps would have."""
    generator = torch.Generator().manual_seed(5)
    deltas = {}
    for m in ("audio", "visual"):
        for name, p in models[0].encoders[m].named_parameters():
            deltas[f"{m}.{name}"] = scale * torch.randn(p.shape, generator=generator)
    with torch.no_grad():
        for target in models:
            for m in ("audio", "visual"):
                for name, p in target.encoders[m].named_parameters():
                    p.add_(deltas[f"{m}.{name}"])


def hand_unimodal_logits(model, features, heads):
    """Each modality's own logits as the loss reads them: the concat head's branch W_m z_m + b, or its own head."""
    if heads == "separate":
        return {m: model.unimodal_heads[m](features[m]) for m in ("audio", "visual")}
    weight, bias = model.fusion.head.weight, model.fusion.head.bias
    size = features["audio"].shape[1]
    return {"audio": features["audio"] @ weight[:, :size].T + bias,
            "visual": features["visual"] @ weight[:, size:].T + bias}


def hand_step(model, batch, start, strength, in_window=True):
    """One SGD step (lr LR) on the loss written out, CE(fused) + CE(u_a) + CE(u_v) plus
    (beta / 2) ||theta - theta_start||^2 on the leading encoder, beta = c exp(tanh(s_lead - s_other)) from the
    batch-sum scores. Returns the parameters after it, beta per modality and the Fisher trace of the base loss
    per modality."""
    heads = "separate" if hasattr(model, "unimodal_heads") else "split"
    labels = batch["label"]
    features = model.encode(batch)
    fused = model.fusion.head(torch.cat([features["audio"], features["visual"]], dim=1))
    unimodal = hand_unimodal_logits(model, features, heads)
    base = F.cross_entropy(fused, labels) + F.cross_entropy(unimodal["audio"], labels) + F.cross_entropy(
        unimodal["visual"], labels)
    rows = torch.arange(len(labels))
    scores = {m: F.softmax(u.detach(), dim=1)[rows, labels].sum().item() for m, u in unimodal.items()}
    leader = max(scores, key=scores.get)
    other = "visual" if leader == "audio" else "audio"
    beta = strength[leader] * math.exp(math.tanh(scores[leader] - scores[other])) if in_window else 0.0
    weights = {m: [p for p in model.encoders[m].parameters() if p.dim() >= 2] for m in ("audio", "visual")}
    grads = {m: torch.autograd.grad(base, weights[m], retain_graph=True) for m in weights}
    trace = {m: sum(float(g.pow(2).mean()) for g in grads[m]) for m in grads}
    proximal = sum(((p - start[leader][name]) ** 2).sum() for name, p in model.encoders[leader].named_parameters())
    (base + 0.5 * beta * proximal).backward()
    after = {name: (p - LR * p.grad).detach() for name, p in model.named_parameters()}
    return after, {leader: beta, other: 0.0}, trace


@pytest.mark.parametrize("heads, strength", [("split", (0.95, 0.1)), ("split", (0.5, 2.0)), ("separate", (0.95, 0.1))])
def test_one_step_is_the_multitask_loss_plus_the_proximal_pull_on_the_leader(model, tiny_batch, heads, strength):
    method = build(model, unimodal_heads=heads, regulation_strength=strength)
    start = {m: {n: p.detach().clone() for n, p in model.encoders[m].named_parameters()} for m in ("audio", "visual")}
    reference = copy.deepcopy(model)
    move_encoders(model, reference)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.0)
    stats = method.training_step(model, tiny_batch, optimizer, StepState(0, 0, CPU))
    expected, betas, trace = hand_step(reference, tiny_batch, start, dict(zip(("audio", "visual"), strength)))
    assert max(betas.values()) > 0  # the leader was regulated
    for m in ("audio", "visual"):
        assert stats[f"beta/{m}"] == pytest.approx(betas[m], rel=1e-6)
        assert method.trace_sums[m] == pytest.approx(trace[m], rel=1e-5)  # the base loss's gradient, not the pull
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_outside_the_window_the_step_is_the_plain_multitask_step(model, tiny_batch):
    method = build(model, trace_average=2)
    method.load_state_dict({"traces": {"audio": [4.0, 3.0, 2.0, 1.0], "visual": [4.0, 3.0, 2.0, 1.0]},
                            "trace_sums": {"audio": 0.5, "visual": 0.5}, "previous": None}, CPU)
    method.on_epoch_start(model, None, StepState(5, 0, CPU))  # epoch 4's sums close, then epoch 5's windows
    assert method.traces["audio"] == [4.0, 3.0, 2.0, 1.0, 0.5] and method.trace_sums["audio"] == 0.0
    assert method.in_window == {"audio": False, "visual": False}
    start = {m: {n: p.detach().clone() for n, p in model.encoders[m].named_parameters()} for m in ("audio", "visual")}
    reference = copy.deepcopy(model)
    move_encoders(model, reference)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.0)
    stats = method.training_step(model, tiny_batch, optimizer, StepState(5, 0, CPU))
    expected, _, _ = hand_step(reference, tiny_batch, start, {"audio": 0.95, "visual": 0.1}, in_window=False)
    assert stats["beta/audio"] == stats["beta/visual"] == 0.0 and stats["loss_proximal"] == 0.0
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("reader, expected", [("own", {"audio": True, "visual": False}),
                                              ("audio", {"audio": True, "visual": True})])
def test_the_release_detector_reads_the_audio_trace_for_both(model, reader, expected):
    method = build(model, trace_average=2, window_trace=reader)
    method.load_state_dict({"traces": {"audio": [1.0, 2.0, 3.0, 4.0], "visual": [4.0, 3.0, 2.0, 1.0]},
                            "trace_sums": {"audio": 0.0, "visual": 0.0}, "previous": None}, CPU)
    assert method.in_window == expected
    assert method.growth["audio"] == pytest.approx(1.0 / 3.5)


def test_state_round_trip_reproduces_the_next_step_exactly(model, tiny_dataset):
    batches = list(tiny_dataset.train.batches(16))[:2]
    method = build(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.0)
    method.training_step(model, batches[0], optimizer, StepState(0, 0, CPU))
    resumed = METHODS["inforeg"](config())
    twin = copy.deepcopy(model)
    resumed.load_state_dict(copy.deepcopy(method.state_dict()), CPU)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=LR, momentum=0.0)
    first = method.training_step(model, batches[1], optimizer, StepState(0, 1, CPU))
    second = resumed.training_step(twin, batches[1], twin_optimizer, StepState(0, 1, CPU))
    assert first == second
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
    assert method.trace_sums == resumed.trace_sums


def test_split_heads_need_a_fusion_with_branches_and_bad_options_are_refused(tiny_dataset):
    gated = MultimodalModel(tiny_dataset.num_classes, fusion="gated", width=4)
    with pytest.raises(ConfigError, match="InfoReg needs a branch per modality"):
        METHODS["inforeg"](config()).prepare_model(gated)
    METHODS["inforeg"](config(unimodal_heads="separate")).prepare_model(gated)  # its own heads: any fusion
    assert set(gated.unimodal_heads) == {"audio", "visual"}
    with pytest.raises(ConfigError, match="--regulation-strength must be a number >= 0.0"):
        config(regulation_strength=(-1.0, 0.1))
    with pytest.raises(ConfigError, match="--window-trace: unknown value 'visual'"):
        config(window_trace="visual")
