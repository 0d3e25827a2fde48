import pytest
import torch
import torchvision

from mmlesson.errors import ConfigError
from mmlesson.models import FUSIONS, MultimodalModel, VisualEncoder


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_full_width_encoders_are_resnet18():
    model = MultimodalModel(6, width=64)
    reference = torchvision.models.resnet18()
    trunk_params = sum(p.numel() for n, p in reference.named_parameters() if not n.startswith("fc"))
    assert count(model.encoders["visual"]) == trunk_params
    # the audio stem sees one channel instead of three: 2 * 64 * 7 * 7 fewer weights
    assert count(model.encoders["audio"]) == trunk_params - 2 * 64 * 7 * 7
    assert model.encoders["audio"].out_dim == 512 == model.encoders["visual"].out_dim


def test_visual_encoder_folds_frames_and_pools_over_time_and_space():
    torch.manual_seed(0)
    encoder = VisualEncoder(width=4).eval()
    frames = torch.randn(3, 5, 3, 32, 32)
    pooled = encoder(frames)
    per_frame = torch.stack([encoder.trunk(frames[:, t]) for t in range(5)], dim=1)  # [B,T,C,h,w]
    assert torch.allclose(pooled, per_frame.mean(dim=(1, 3, 4)), atol=1e-6)


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_fusion_runs_forward_and_backward(fusion, tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, fusion=fusion, width=4)
    output = model(tiny_batch)
    assert output.logits.shape == (12, 6)
    branches = {"audio"} if fusion == "gated" else {"audio", "visual"}  # gated: none for the gating modality
    assert set(output.logits_per_modality) == set(model.branch_modalities) == branches
    assert all(v.shape == (12, 6) for v in output.logits_per_modality.values())
    assert output.features["audio"].shape == (12, 32)
    torch.nn.functional.cross_entropy(output.logits, tiny_batch["label"]).backward()
    for m in ("audio", "visual"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoders[m].parameters()), m


@pytest.mark.parametrize("fusion", ["concat", "film", "gated"])
def test_concat_film_and_gated_branches_are_the_head_with_the_other_modality_zeroed(fusion, tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, fusion=fusion, width=4).eval()
    output = model(tiny_batch)
    za, zv = output.features["audio"], output.features["visual"]
    assert torch.allclose(output.logits_per_modality["audio"], model.fusion({"audio": za, "visual": torch.zeros_like(zv)}))
    if fusion == "gated":  # visual gates audio: alone it would predict a constant, so it has no branch
        assert "visual" not in output.logits_per_modality
    else:
        assert torch.allclose(output.logits_per_modality["visual"], model.fusion({"audio": torch.zeros_like(za), "visual": zv}))


def test_concat_logits_are_the_additive_sum_of_unimodal_terms(tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, fusion="concat", width=4).eval()
    output = model(tiny_batch)
    blocks, bias = model.fusion.weight_blocks(), model.fusion.head.bias
    by_hand = output.features["audio"] @ blocks["audio"].T + output.features["visual"] @ blocks["visual"].T + bias
    assert torch.allclose(output.logits, by_hand, atol=1e-5)
    # each per-modality logit carries the full bias, so the two add up to the fused logits plus b
    total = output.logits_per_modality["audio"] + output.logits_per_modality["visual"]
    assert torch.allclose(total, output.logits + bias, atol=1e-5)


def test_sum_logits_decompose(tiny_batch):
    torch.manual_seed(0)
    model = MultimodalModel(6, fusion="sum", width=4).eval()
    output = model(tiny_batch)
    total = output.logits_per_modality["audio"] + output.logits_per_modality["visual"]
    assert torch.allclose(total, output.logits, atol=1e-5)  # each branch is its own layer, biases included


def test_film_and_gated_use_the_conditioning_modality(tiny_batch):
    torch.manual_seed(0)
    for fusion in ("film", "gated"):
        model = MultimodalModel(6, fusion=fusion, width=4).eval()
        features = model.encode(tiny_batch)
        shifted = dict(features, visual=features["visual"] + 1.0)
        assert not torch.allclose(model.fusion(features), model.fusion(shifted)), fusion


def test_unimodal_model_has_one_encoder(tiny_batch):
    model = MultimodalModel(6, modalities=("audio",), width=4)
    output = model(tiny_batch)
    assert list(model.encoders) == ["audio"]
    assert torch.equal(output.logits_per_modality["audio"], output.logits)


def test_bad_model_names():
    with pytest.raises(ConfigError, match="choose one of: concat, film, gated, shared, sum"):
        MultimodalModel(6, fusion="attention")
    with pytest.raises(ConfigError, match="needs two modalities"):
        MultimodalModel(6, modalities=("audio",), fusion="film")
