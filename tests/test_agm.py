"""AGM: the coefficients against hand numbers (and their direction, which one re-implementation inverts),
the scores' floor, the running means, and one training step against the update computed by hand: in
closed form on a linear model without batch norm, and with autograd on the paper's Shapley responses
on the ResNet model (batch norm: training-mode full pass, evaluation-mode zeroed-input passes)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig, fit
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.agm import AGM, agm_coefficients, response_scores, update_running_scores
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS, linear_model

CPU = torch.device("cpu")


# ---------------------------------------------------------------- the pure functions, by hand

def test_coefficients_by_hand_and_their_direction():
    """Audio's loss is lower than visual's by more than on average so far: audio is pulling ahead, so
    it is suppressed (c < 1) and visual, the lagging modality, is boosted (c > 1)."""
    scores, running = {"audio": 0.5, "visual": 1.0}, {"audio": 0.8, "visual": 0.9}
    c = agm_coefficients(scores, running, alpha=1.0, cap=10.0)
    assert c["audio"] == pytest.approx(math.exp(math.exp(0.1) - math.exp(0.5)), rel=1e-12)  # 0.5807
    assert c["visual"] == pytest.approx(math.exp(math.exp(-0.1) - math.exp(-0.5)), rel=1e-12)  # 1.3476
    assert c["audio"] < 1.0 < c["visual"]
    # the n-modality generalisation exp(s_m - mean s) inverts the ratio for two modalities: it would
    # boost audio here, the modality pulling ahead
    inverted_audio = math.exp(1.0 * (math.exp(0.8 - 0.9) - math.exp(0.5 - 1.0)))
    assert inverted_audio > 1.0 and c["audio"] < 1.0


def test_the_lagging_modality_always_gets_the_larger_coefficient():
    torch.manual_seed(0)
    for _ in range(200):
        s = torch.rand(2).tolist()
        S = torch.rand(2).tolist()
        c = agm_coefficients({"audio": s[0], "visual": s[1]}, {"audio": S[0], "visual": S[1]}, alpha=1.5)
        audio_ahead = (s[1] - s[0]) - (S[1] - S[0])  # audio's advantage now minus its usual one (log scale)
        if audio_ahead > 1e-9:  # audio pulls ahead of its history, visual lags: visual gets the larger one
            assert c["audio"] < 1.0 < c["visual"]
        elif audio_ahead < -1e-9:
            assert c["visual"] < 1.0 < c["audio"]


def test_ties_alpha_zero_the_cap_and_an_underflowing_coefficient():
    same = {"audio": 0.7, "visual": 0.7}
    assert agm_coefficients(same, same, alpha=2.0) == {"audio": 1.0, "visual": 1.0}
    assert agm_coefficients({"audio": 0.1, "visual": 2.0}, {"audio": 1.0, "visual": 0.3}, alpha=0.0) == \
        {"audio": 1.0, "visual": 1.0}
    # rbar_a - r_a = e^3 - 1 = 19.1 > cap: capped at 10
    c = agm_coefficients({"audio": 1.0, "visual": 1.0}, {"audio": 0.0, "visual": 3.0}, alpha=0.5, cap=10.0)
    assert c["audio"] == pytest.approx(math.exp(0.5 * 10.0), rel=1e-12)
    assert c["visual"] == pytest.approx(math.exp(0.5 * (math.exp(-3.0) - 1.0)), rel=1e-12)
    # audio far ahead of its history: exp(-6.6e7) underflows to an exact 0 (no NaN), visual gets e^alpha
    c = agm_coefficients({"audio": 0.0, "visual": 18.0}, {"audio": 0.0, "visual": 0.0}, alpha=1.0)
    assert c["audio"] == 0.0 and c["visual"] == pytest.approx(math.exp(1.0 - math.exp(-18.0)), rel=1e-12)


def test_scores_are_mean_cross_entropies_with_the_release_floor():
    labels = torch.tensor([0, 0])
    audio = torch.tensor([[math.log(3.0), 0.0], [0.0, 50.0]], dtype=torch.float64)  # p(true) = 3/4; e^-50: floored
    visual = torch.zeros(2, 2, dtype=torch.float64)  # p(true) = 1/2 twice
    s = response_scores({"audio": audio, "visual": visual}, labels)
    assert s["audio"] == pytest.approx((-math.log(0.75) - math.log(1e-8)) / 2, rel=1e-12)
    assert s["visual"] == pytest.approx(math.log(2.0), rel=1e-12)


def test_running_scores_are_the_mean_over_steps():
    running = {"audio": 0.0, "visual": 0.0}
    history = [{"audio": 1.0, "visual": 4.0}, {"audio": 2.0, "visual": 1.0}, {"audio": 6.0, "visual": 1.0}]
    for t, scores in enumerate(history, start=1):
        running = update_running_scores(running, scores, t)
    assert running == pytest.approx({"audio": 3.0, "visual": 2.0}, rel=1e-12)


# ---------------------------------------------------------------- a linear model without batch norm

def linear_batch(scale: float = 1.0, seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"audio": scale * torch.randn(4, 4, generator=generator, dtype=torch.float64),
            "visual": scale * torch.randn(4, 5, generator=generator, dtype=torch.float64),
            "label": torch.tensor([0, 1, 2, 1])}


def agm(**options) -> AGM:
    return AGM(TrainConfig.build(method="agm", **{"agm_clip": 0.0, **options}))


def sgd_step(method, model, batch, epoch: int = 0) -> tuple[dict, dict]:
    """One step with plain SGD, lr 1: returns the stats and ``before - after`` of every parameter."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0, weight_decay=0.0)
    stats = method.training_step(model, batch, optimizer, StepState(epoch, 0, CPU))
    return stats, {n: before[n] - p.detach() for n, p in model.named_parameters()}


def by_hand(model, batch, alpha, running):
    """The paper's quantities in closed form for a linear model: m_a = W_a A x_a + b/2 (the Shapley value
    of two players with phi(0) = 0), m_v likewise; s, r, rbar, c; and the joint gradient of CE(T)."""
    A, V = model.encoders["audio"].linear.weight, model.encoders["visual"].linear.weight
    W, b = model.fusion.head.weight, model.fusion.head.bias
    z_a, z_v = batch["audio"] @ A.T, batch["visual"] @ V.T
    m = {"audio": z_a @ W[:, :3].T + b / 2, "visual": z_v @ W[:, 3:].T + b / 2}
    labels = batch["label"]
    s = {k: float(F.cross_entropy(v.detach(), labels)) for k, v in m.items()}
    r_a, rbar_a = math.exp(s["visual"] - s["audio"]), math.exp(running["visual"] - running["audio"])
    c = {"audio": math.exp(alpha * min(rbar_a - r_a, 10.0)),
         "visual": math.exp(alpha * min(1 / rbar_a - 1 / r_a, 10.0))}
    reference = copy.deepcopy(model)
    F.cross_entropy(reference(batch).logits, labels).backward()
    joint = {n: p.grad for n, p in reference.named_parameters()}
    return s, c, joint


def test_one_step_is_c_m_times_the_joint_gradient_per_modality_by_hand():
    model, batch = linear_model(), linear_batch()
    method = agm(alpha=1.0)
    s, c, joint = by_hand(model, batch, 1.0, {"audio": 0.0, "visual": 0.0})
    assert abs(math.log(c["audio"])) > 0.01  # a real modulation
    stats, delta = sgd_step(method, model, batch)
    expected = {"encoders.audio.linear.weight": c["audio"] * joint["encoders.audio.linear.weight"],
                "encoders.visual.linear.weight": c["visual"] * joint["encoders.visual.linear.weight"],
                "fusion.head.weight": torch.cat([c["audio"] * joint["fusion.head.weight"][:, :3],
                                                 c["visual"] * joint["fusion.head.weight"][:, 3:]], dim=1),
                "fusion.head.bias": (c["audio"] + c["visual"]) / 2 * joint["fusion.head.bias"]}
    for name, value in expected.items():
        torch.testing.assert_close(delta[name], value, rtol=0, atol=1e-12, msg=name)
    assert stats["coefficient/audio"] == pytest.approx(c["audio"], rel=1e-12)
    assert stats["score/visual"] == pytest.approx(s["visual"], rel=1e-12)
    with torch.no_grad():
        fused_loss = float(F.cross_entropy(linear_model()(batch).logits, batch["label"]))
    assert stats["loss"] == pytest.approx(fused_loss, rel=1e-12)  # CE(m_a + m_v) = CE(T)
    assert method.state_dict() == {"running": pytest.approx(s, rel=1e-12), "steps": 1}


def test_a_later_step_uses_the_running_means_and_updates_them():
    model, batch = linear_model(seed=3), linear_batch(seed=4)
    method = agm(alpha=0.7)
    running = {"audio": 0.9, "visual": 1.3}
    method.load_state_dict({"running": running, "steps": 4}, CPU)
    s, c, joint = by_hand(model, batch, 0.7, running)
    stats, delta = sgd_step(method, model, batch)
    torch.testing.assert_close(delta["encoders.visual.linear.weight"],
                               c["visual"] * joint["encoders.visual.linear.weight"], rtol=0, atol=1e-12)
    assert method.state_dict()["steps"] == 5
    assert method.state_dict()["running"] == pytest.approx({m: running[m] * 4 / 5 + s[m] / 5 for m in s}, rel=1e-12)


def test_resuming_from_the_state_dict_gives_the_same_next_step():
    batches = [linear_batch(seed=10), linear_batch(seed=11)]
    model, method = linear_model(), agm()
    sgd_step(method, model, batches[0])
    saved_model, saved_state = copy.deepcopy(model), copy.deepcopy(method.state_dict())
    _, delta = sgd_step(method, model, batches[1])
    resumed = agm()
    resumed.load_state_dict(saved_state, CPU)
    _, delta_resumed = sgd_step(resumed, saved_model, batches[1])
    for name in delta:
        assert torch.equal(delta[name], delta_resumed[name]), name
    assert resumed.state_dict() == method.state_dict()


def test_a_modality_without_gradient_stays_put_and_nothing_is_nan():
    model, batch = linear_model(), linear_batch()
    batch["visual"] = torch.zeros_like(batch["visual"])  # z_v = 0: the visual encoder gets no gradient
    stats, delta = sgd_step(agm(), model, batch)
    assert torch.equal(delta["encoders.visual.linear.weight"], torch.zeros(3, 5, dtype=torch.float64))
    assert all(torch.isfinite(d).all() for d in delta.values()) and math.isfinite(stats["loss"])


def test_without_gradients_through_the_padded_passes_every_gradient_gets_the_mean_coefficient():
    model, batch = linear_model(), linear_batch()
    _, c, joint = by_hand(model, batch, 1.0, {"audio": 0.0, "visual": 0.0})
    _, delta = sgd_step(agm(alpha=1.0, padded_grad=False), model, batch)
    for name, grad in joint.items():
        torch.testing.assert_close(delta[name], (c["audio"] + c["visual"]) / 2 * grad, rtol=0, atol=1e-12, msg=name)


def test_the_release_clip_fires_on_a_large_head_gradient_and_only_then():
    model, batch = linear_model(), linear_batch(scale=100.0)  # big features: head gradient entries above 1
    stats, delta = sgd_step(agm(agm_clip=1.0), model, batch)
    assert stats["clipped"] == 1.0
    total = float(torch.sqrt(sum((d ** 2).sum() for d in delta.values())))
    assert total == pytest.approx(1.0, rel=1e-6)  # torch's clip divides by (norm + 1e-6)
    small = linear_batch(scale=0.01)
    clipped_model, free_model = linear_model(), linear_model()
    stats, delta = sgd_step(agm(agm_clip=1.0), clipped_model, small)
    _, free = sgd_step(agm(agm_clip=0.0), free_model, small)
    assert stats["clipped"] == 0.0
    assert all(torch.equal(delta[n], free[n]) for n in delta)


# ---------------------------------------------------------------- the ResNet model, batch norm included

def test_one_step_on_the_resnet_follows_the_shapley_responses_with_eval_mode_padded_passes(tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, width=4).double().train()
    batch = {k: (v.double() if v.is_floating_point() else v) for k, v in tiny_batch.items()}
    labels, alpha = batch["label"], 1.5
    reference = copy.deepcopy(model)
    # the paper's responses, written out: T in training mode, then f(x_a, 0) and f(0, x_v) in eval mode
    T = reference(batch).logits
    reference.eval()
    audio_only = reference({**batch, "visual": torch.zeros_like(batch["visual"])}).logits
    visual_only = reference({**batch, "audio": torch.zeros_like(batch["audio"])}).logits
    m_a = (T - visual_only + audio_only) / 2
    m_v = (T - audio_only + visual_only) / 2
    s = {k: float(-torch.log_softmax(v.detach(), 1).gather(1, labels[:, None]).clamp(min=math.log(1e-8)).mean())
         for k, v in (("audio", m_a), ("visual", m_v))}
    c_a = math.exp(alpha * min(1.0 - math.exp(s["visual"] - s["audio"]), 10.0))  # step 1: rbar = 1
    c_v = math.exp(alpha * min(1.0 - math.exp(s["audio"] - s["visual"]), 10.0))
    g = ((T.detach().softmax(1) - F.one_hot(labels, 6)) / len(labels))  # dCE/dlogits at m_a + m_v = T
    (g * (c_a * m_a + c_v * m_v)).sum().backward()  # the gradient into m_m scaled by c_m
    stats, delta = sgd_step(agm(alpha=alpha), model, batch)
    assert model.training  # the evaluation-mode passes leave the model as they found it
    assert stats["coefficient/audio"] == pytest.approx(c_a, rel=1e-9)
    assert stats["coefficient/visual"] == pytest.approx(c_v, rel=1e-9)
    for name, p in reference.named_parameters():
        torch.testing.assert_close(delta[name], p.grad, rtol=1e-9, atol=1e-12, msg=name)
    for name, buffer in reference.named_buffers():  # running statistics: updated once, by T
        torch.testing.assert_close(dict(model.named_buffers())[name], buffer, rtol=0, atol=0, msg=name)


def test_agm_refuses_a_unimodal_model_and_trains_with_other_fusions(tiny_dataset):
    with pytest.raises(ConfigError, match="AGM needs an audio and a visual encoder"):
        agm().prepare_model(MultimodalModel(6, modalities=("audio",), width=4))
    for fusion in ("sum", "gated"):
        config = TrainConfig.build(method="agm", fusion=fusion, data_knobs=TINY_KNOBS, width=4, epochs=1,
                                   batch_size=16, probe=False, progress="off", device="cpu")
        history = fit(config, dataset=tiny_dataset).metrics["history"]
        assert math.isfinite(history[0]["train"]["loss"]) and set(history[0]["train"]["coefficient"]) == {
            "audio", "visual"}


def test_bad_agm_options_are_refused():
    assert METHODS["agm"] is AGM
    with pytest.raises(ConfigError, match="--agm-clip must be a number >= 0.0"):
        TrainConfig.build(method="agm", agm_clip=-1.0)
    with pytest.raises(ConfigError, match="--alpha must be a number >= 0.0"):
        TrainConfig.build(method="agm", alpha=-0.5)
