import pytest
import torch

from mmlesson.analysis.decision import decision_summary, unimodal_contributions, weight_blocks, weight_statistics
from mmlesson.models import MultimodalModel


def concat_model_with_known_weights():
    torch.manual_seed(0)
    model = MultimodalModel(3, fusion="concat", width=1).eval()  # 8-d features per modality
    weight = torch.zeros(3, 16)
    weight[:, :8] = torch.tensor([1.0, 2.0, 3.0])[:, None]  # audio block: class c has weight c + 1
    weight[:, 8:] = -0.5  # visual block
    with torch.no_grad():
        model.fusion.head.weight.copy_(weight)
        model.fusion.head.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
    return model


def test_weight_blocks_and_their_statistics_by_hand():
    blocks = weight_blocks(concat_model_with_known_weights())
    assert torch.equal(blocks["audio"], torch.tensor([1.0, 2.0, 3.0])[:, None].expand(3, 8))
    assert torch.equal(blocks["visual"], torch.full((3, 8), -0.5))
    stats = weight_statistics(blocks)
    assert stats["audio"]["per_class_l1"] == pytest.approx([1.0, 2.0, 3.0])
    assert stats["audio"]["mean_abs"] == pytest.approx(2.0)
    assert stats["visual"]["per_class_l1"] == pytest.approx([0.5, 0.5, 0.5]) and stats["visual"]["mean_abs"] == 0.5


def test_sum_and_unimodal_models_have_blocks_film_does_not():
    summed = MultimodalModel(4, fusion="sum", width=1)
    assert torch.equal(weight_blocks(summed)["visual"], summed.fusion.heads["visual"].weight.detach())
    unimodal = MultimodalModel(4, modalities=("audio",), width=1)
    assert list(weight_blocks(unimodal)) == ["audio"] and weight_blocks(unimodal)["audio"].shape == (4, 8)
    with pytest.raises(ValueError, match="needs fusion 'concat' or 'sum'"):
        weight_blocks(MultimodalModel(4, fusion="film", width=1))


def test_mean_abs_logit_and_per_class_accuracy_by_hand():
    from mmlesson.data import load

    from .conftest import TINY_KNOBS

    model = concat_model_with_known_weights()
    test = load("synthav", **{**TINY_KNOBS, "num_classes": 3}).test
    contributions = unimodal_contributions(model, test, "cpu", batch_size=7)  # uneven batches on purpose
    with torch.no_grad():
        features = model.encode({"audio": test.audio, "visual": test.visual})
        output = model({"audio": test.audio, "visual": test.visual})
    blocks = weight_blocks(model)
    expected = float((features["audio"] @ blocks["audio"].T).abs().mean())
    assert contributions["mean_abs_logit"]["audio"] == pytest.approx(expected, rel=1e-5)
    predictions = output.logits_per_modality["visual"].argmax(1)
    per_class = contributions["per_class_acc"]["visual"]
    for c in range(3):
        mask = test.label == c
        assert per_class[c] == pytest.approx(float((predictions[mask] == c).float().mean()))


def test_decision_summary_collects_every_measure(tiny_dataset):
    model = MultimodalModel(6, fusion="concat", width=2)
    summary = decision_summary(model, tiny_dataset.test, "cpu")
    assert set(summary) == {"audio", "visual"}
    for m in summary:
        assert set(summary[m]) == {"per_class_l1", "mean_abs", "mean_abs_logit", "per_class_acc"}
        assert len(summary[m]["per_class_l1"]) == len(summary[m]["per_class_acc"]) == 6


def test_decision_layer_figures_draw(tiny_dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmlesson.plots import plot_per_class_capability, plot_weight_distributions, plot_weight_heatmap

    model = concat_model_with_known_weights()
    blocks = weight_blocks(model)
    fig, axes = plt.subplots(1, 3)
    image = plot_weight_heatmap(blocks, axes[0], title="known weights")
    assert image.get_array().shape == (3, 16)
    assert image.get_array()[0, 0] == 1.0 and image.get_array()[2, 15] == 0.5  # |W|, audio then visual
    plot_weight_distributions(blocks, axes[1])
    assert len(axes[1].patches) == 2 * 50
    summary = decision_summary(MultimodalModel(6, width=2), tiny_dataset.test, "cpu")
    right = plot_per_class_capability(summary, axes[2])
    assert len(axes[2].patches) == 2 * 6 and len(right.lines) == 2
    plt.close(fig)
