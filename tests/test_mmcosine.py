"""MMCosine: the cosine logits against hand numbers, their invariances, one SGD step against the loss written
as the paper writes it, the bias that plays no part, and an evaluation that reads the trained logits (the
release's validation scores the plain linear head instead)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig, fit
from mmlesson.analysis.decision import decision_scores, weight_blocks
from mmlesson.engine import evaluate
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.mmcosine import CosineFusion
from mmlesson.models import MultimodalModel
from mmlesson.models.fusion import ConcatFusion

from .conftest import TINY_KNOBS


def config(**overrides):
    return TrainConfig.build(**{"method": "mmcosine", "data_knobs": TINY_KNOBS, "width": 4, "epochs": 1,
                                "batch_size": 16, "probe": False, "progress": "off", "device": "cpu", **overrides})


def tiny_head(scale=2.0):
    """A concat head over audio (2 features) and visual (3 features), 2 classes, fixed weights and bias."""
    concat = ConcatFusion({"audio": 2, "visual": 3}, 2)
    with torch.no_grad():
        # class 0: W_a,0 = (3, 4), W_v,0 = (1, 0, 0); class 1: W_a,1 = (0, -2), W_v,1 = (0, 2, 2)
        concat.head.weight.copy_(torch.tensor([[3.0, 4.0, 1.0, 0.0, 0.0], [0.0, -2.0, 0.0, 2.0, 2.0]]))
        concat.head.bias.copy_(torch.tensor([5.0, -5.0]))
    return CosineFusion(concat, scale)


def test_cosine_logits_by_hand():
    fusion = tiny_head(scale=2.0)
    features = {"audio": torch.tensor([[6.0, 8.0], [1.0, 0.0]]),
                "visual": torch.tensor([[0.0, 3.0, 0.0], [2.0, 0.0, 0.0]])}
    # sample 0: audio (6, 8) is parallel to (3, 4): cos 1; against (0, -2): -8 / 10. visual (0, 3, 0): 0 and 1/sqrt(2)
    # sample 1: audio (1, 0): 3/5 and 0; visual (2, 0, 0): 1 and 0
    audio = torch.tensor([[1.0, -0.8], [0.6, 0.0]]) * 2.0
    visual = torch.tensor([[0.0, 1 / math.sqrt(2)], [1.0, 0.0]]) * 2.0
    branches = fusion.branch_logits(features)
    torch.testing.assert_close(branches["audio"], audio)
    torch.testing.assert_close(branches["visual"], visual)
    torch.testing.assert_close(fusion(features), audio + visual)  # no bias: the 5 and -5 play no part
    assert fusion.head.bias is None and "head.bias" not in fusion.state_dict()


def test_the_logits_ignore_feature_and_class_weight_norms():
    torch.manual_seed(0)
    fusion = CosineFusion(ConcatFusion({"audio": 4, "visual": 6}, 3), scale=10.0)
    features = {"audio": torch.randn(5, 4), "visual": torch.randn(5, 6)}
    before = fusion(features)
    scaled = {"audio": features["audio"] * torch.tensor([[3.0], [0.1], [7.0], [1.0], [2.0]]),
              "visual": features["visual"] * 40}
    torch.testing.assert_close(fusion(scaled), before)
    with torch.no_grad():
        fusion.head.weight[1, :4] *= 25.0  # class 1's audio row only
        fusion.head.weight[2, 4:] *= 0.01  # class 2's visual row only
    torch.testing.assert_close(fusion(features), before)
    assert before.abs().max() <= 2 * 10.0 + 1e-5  # each cosine is in [-1, 1]


def test_a_zero_feature_vector_gives_zero_branch_logits_not_nan():
    fusion = tiny_head()
    logits = fusion.branch_logits({"audio": torch.zeros(1, 2), "visual": torch.tensor([[1.0, 0.0, 0.0]])})
    assert torch.equal(logits["audio"], torch.zeros(1, 2))
    assert torch.isfinite(logits["visual"]).all()


def test_the_feature_gradient_has_no_radial_component():
    """d logit / d z_m is orthogonal to z_m (the cosine does not see the norm), unlike a linear head's."""
    torch.manual_seed(1)
    fusion = CosineFusion(ConcatFusion({"audio": 4, "visual": 4}, 3), scale=10.0)
    features = {m: torch.randn(6, 4, requires_grad=True) for m in ("audio", "visual")}
    F.cross_entropy(fusion(features), torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    for z in features.values():
        radial = (z.grad * z).sum(dim=1)
        assert radial.abs().max() < 1e-6 and z.grad.abs().max() > 1e-3


@pytest.fixture
def model(tiny_dataset):
    torch.manual_seed(0)
    return MultimodalModel(tiny_dataset.num_classes, width=4).train()


def paper_loss(reference, batch, scale):
    """-mean_i log softmax_c( s (cos theta_a,c + cos theta_v,c) )[y_i], with cos written out as x.w / (|x| |w|)
    on the plain concat model's encoders and head weight (its bias unused)."""
    weight = reference.fusion.head.weight
    size_a = reference.encoders["audio"].out_dim
    blocks = {"audio": weight[:, :size_a], "visual": weight[:, size_a:]}
    logits = 0.0
    for m in ("audio", "visual"):
        z = reference.encoders[m](batch[m])  # [B, D]
        dots = z @ blocks[m].T  # [B, C]
        logits = logits + scale * dots / (z.norm(dim=1, keepdim=True) * blocks[m].norm(dim=1)[None, :])
    log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -log_p[torch.arange(len(batch["label"])), batch["label"]].mean()


def test_one_sgd_step_is_the_step_on_the_papers_loss(model, tiny_batch):
    cfg = config(scale=7.0)
    reference = copy.deepcopy(model)  # plain concat model: the expected side never touches the package's head
    method = METHODS["mmcosine"](cfg)
    method.prepare_model(model)
    lr = 0.05
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0, weight_decay=0.0)
    stats = method.training_step(model, tiny_batch, optimizer, StepState(0, 0, torch.device("cpu")))

    loss = paper_loss(reference, tiny_batch, 7.0)
    loss.backward()
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-6)
    after = dict(model.named_parameters())
    assert "fusion.head.bias" not in after  # the bias is gone, not merely frozen
    for name, p in reference.named_parameters():
        if name == "fusion.head.bias":
            continue
        expected = p.detach() - lr * p.grad
        torch.testing.assert_close(after[name].detach(), expected, rtol=1e-5, atol=1e-6, msg=name)


def test_branches_are_each_modalitys_own_scaled_cosine(model, tiny_batch):
    METHODS["mmcosine"](config(scale=3.0)).prepare_model(model)
    output = model.eval()(tiny_batch)
    weight = model.fusion.head.weight
    size_a = model.encoders["audio"].out_dim
    for m, block in (("audio", weight[:, :size_a]), ("visual", weight[:, size_a:])):
        z = output.features[m]
        expected = 3.0 * (z @ block.T) / (z.norm(dim=1, keepdim=True) * block.norm(dim=1))
        torch.testing.assert_close(output.logits_per_modality[m], expected, rtol=1e-5, atol=1e-5)
    branches = output.logits_per_modality
    torch.testing.assert_close(output.logits, branches["audio"] + branches["visual"])


def test_evaluation_reads_the_cosine_logits_it_trained_not_the_plain_head(tiny_dataset):
    """The release's validation scores W [z_a; z_v] + b; here the model itself computes the cosine logits,
    so the accuracy the engine reports is the accuracy of the classifier that was trained."""
    run = fit(config(epochs=2), dataset=tiny_dataset)
    model = run.model.eval()
    correct, plain_differs, total = 0, False, 0
    weight = model.fusion.head.weight
    size_a = model.encoders["audio"].out_dim
    with torch.no_grad():
        for batch in tiny_dataset.test.batches(256):
            z = {m: model.encoders[m](batch[m]) for m in ("audio", "visual")}
            cosine = sum(10.0 * F.normalize(z[m], dim=1) @ F.normalize(w, dim=1).T
                         for m, w in (("audio", weight[:, :size_a]), ("visual", weight[:, size_a:])))
            correct += int((cosine.argmax(1) == batch["label"]).sum())
            plain = torch.cat([z["audio"], z["visual"]], dim=1) @ weight.T  # the release's head, its bias 0
            plain_differs |= not torch.allclose(plain, cosine)
            total += len(batch["label"])
    assert plain_differs
    assert run.metrics["final"]["test"]["acc"] == pytest.approx(correct / total)
    assert evaluate(model, tiny_dataset.test, "cpu", tiny_dataset.num_classes)["acc"] == pytest.approx(correct / total)


def test_the_decision_layer_analysis_reads_the_normalised_blocks(model, tiny_dataset):
    METHODS["mmcosine"](config(scale=4.0)).prepare_model(model)
    blocks = weight_blocks(model)
    for block in blocks.values():
        torch.testing.assert_close(block.norm(dim=1), torch.full((block.shape[0],), 4.0))
    scores = decision_scores(model, tiny_dataset.test, "cpu")
    assert set(scores["mean_abs_weight"]) == {"audio", "visual"}
    assert all(math.isfinite(v) for v in scores["mean_abs_logit"].values())


def test_the_head_keeps_the_initial_weights_and_draws_nothing(model):
    weight = model.fusion.head.weight.detach().clone()
    state = torch.get_rng_state()
    METHODS["mmcosine"](config()).prepare_model(model)
    assert torch.equal(model.fusion.head.weight, weight)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("fusion", ["sum", "film", "gated", "shared"])
def test_other_fusions_are_refused_with_the_fix(fusion, tiny_dataset):
    model = MultimodalModel(tiny_dataset.num_classes, width=4, fusion=fusion)
    with pytest.raises(ConfigError, match="use --fusion concat"):
        METHODS["mmcosine"](config(fusion=fusion)).prepare_model(model)


def test_bad_scale_is_refused():
    with pytest.raises(ConfigError, match="--scale must be > 0.0"):
        config(scale=0.0)
