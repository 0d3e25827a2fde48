import torch
import torch.nn.functional as F

from mmlesson.analysis.gradients import additive_gradient_check, counterfactual_gradient_norms, fused_logit_gradient
from mmlesson.models import MultimodalModel


def test_fused_logit_gradient_by_hand():
    logits = torch.tensor([[0.0, 0.0], [torch.log(torch.tensor(3.0)), 0.0]])
    labels = torch.tensor([0, 1])
    # softmax rows: [1/2, 1/2] and [3/4, 1/4]; minus one-hot; divided by B = 2
    expected = torch.tensor([[-0.25, 0.25], [0.375, -0.375]])
    assert torch.allclose(fused_logit_gradient(logits, labels), expected)


def test_fused_logit_gradient_matches_autograd():
    torch.manual_seed(0)
    logits = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 5, (7,))
    (autograd,) = torch.autograd.grad(F.cross_entropy(logits, labels), logits)
    assert torch.allclose(autograd, fused_logit_gradient(logits.detach(), labels), atol=1e-12)


def test_additive_gradient_identity_on_a_real_model(tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, fusion="concat", width=4).double().train()
    batch = {k: (v.double() if v.is_floating_point() else v) for k, v in tiny_batch.items()}
    report = additive_gradient_check(model, batch)
    for part in ("features", "decision_layer", "encoder"):
        for m in ("audio", "visual"):
            assert report[part][m] < 1e-12, (part, m, report[part][m])


def test_the_check_detects_a_wrong_formula(tiny_batch, monkeypatch):
    """The check can fail: with the probabilities' sign flipped it reports a large difference."""
    import mmlesson.analysis.gradients as gradients

    torch.manual_seed(0)
    model = MultimodalModel(6, fusion="concat", width=4)
    monkeypatch.setattr(gradients, "fused_logit_gradient", lambda logits, labels: -fused_logit_gradient(logits, labels))
    report = gradients.additive_gradient_check(model, tiny_batch)
    assert report["features"]["audio"] > 1e-4


def test_counterfactual_norms_differ_only_through_the_residual(tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, fusion="concat", width=4).double().eval()
    batch = {k: (v.double() if v.is_floating_point() else v) for k, v in tiny_batch.items()}
    fused, own = counterfactual_gradient_norms(model, batch, "visual")
    # by hand: the visual encoder's gradient of CE(fused logits) and of CE(W_v z_v + b)
    output = model(batch)
    params = [p for p in model.encoders["visual"].parameters()]
    expected = []
    for logits in (output.logits, output.logits_per_modality["visual"]):
        grads = torch.autograd.grad(F.cross_entropy(logits, batch["label"]), params, retain_graph=True, allow_unused=True)
        expected.append(float(torch.cat([g.flatten() for g in grads if g is not None]).norm()))
    assert abs(fused - expected[0]) < 1e-10 and abs(own - expected[1]) < 1e-10
    assert abs(fused - own) > 1e-6  # audio contributes to the fused residual
    with torch.no_grad():  # silence audio in the decision layer: the fused residual is the visual branch's
        model.fusion.weight_blocks()["audio"].zero_()
    fused, own = counterfactual_gradient_norms(model, batch, "visual")
    assert abs(fused - own) < 1e-10
    assert all(p.grad is None for p in model.parameters())  # leaves no gradient behind
