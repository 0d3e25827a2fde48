"""Chapter 4's methods and what they stand on: multi-stage methods in the engine, the fusions'
branches, token features, MLA's projector, CCAT's contributions, regulariser, LoRA, stages."""
import math

import pytest
import torch

from mmlesson import fit
from mmlesson.analysis.contributions import contribution_gap, contributions, mutual_information
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.methods.ccat import secondary_subsets
from mmlesson.methods.mla import update_projector
from mmlesson.models import MultimodalModel
from mmlesson.models.ccat import LoRA
from mmlesson.models.fusion import decision_level_fusion

from .conftest import TINY_KNOBS
from .test_engine import states_equal, strip_seconds, tiny_config


def ccat_config(**overrides):
    return tiny_config(**{"method": "ccat", "epochs": 4, "classifier_epochs": 2, "beta": 0.5, **overrides})


# -- contributions (Eq. 5-7) --------------------------------------------------------------------------

def test_mutual_information_by_hand():
    unimodal = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    fused = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    z = unimodal / unimodal.norm(dim=1, keepdim=True)
    f = fused / fused.norm(dim=1, keepdim=True)
    for i in range(3):
        similarities = [float(f[i] @ z[j]) for j in range(3)]
        expected = math.log(3) + similarities[i] - math.log(sum(math.exp(s) for s in similarities))
        assert float(mutual_information(unimodal, fused)[i]) == pytest.approx(expected, rel=1e-6)


def test_contributions_sum_to_one_and_identical_modalities_share_equally():
    torch.manual_seed(0)
    fused, audio, visual = torch.randn(8, 5), torch.randn(8, 5), torch.randn(8, 5)
    shares = contributions({"audio": audio, "visual": visual}, fused)
    assert torch.allclose(shares["audio"] + shares["visual"], torch.ones(8))
    same = contributions({"audio": audio, "visual": audio.clone()}, fused)
    assert torch.allclose(same["audio"], torch.full((8,), 0.5)) and torch.allclose(same["visual"], torch.full((8,), 0.5))
    # a modality equal to the fusion identifies every sample best: it gets the larger share
    aligned = contributions({"audio": fused.clone(), "visual": visual}, fused)
    assert bool((aligned["audio"] > 0.5).all())


def test_contribution_gap_is_the_mean_absolute_difference():
    shares = {"audio": torch.tensor([0.2, 0.7, 0.5]), "visual": torch.tensor([0.8, 0.3, 0.5])}
    assert float(contribution_gap(shares)) == pytest.approx((0.6 + 0.4 + 0.0) / 3)


def test_secondary_subsets_are_the_samples_under_beta():
    shares = {"audio": torch.tensor([0.1, 0.4, 0.2]), "visual": torch.tensor([0.9, 0.6, 0.8])}
    subsets = secondary_subsets(shares, 0.3)
    assert subsets["audio"].tolist() == [True, False, True] and subsets["visual"].tolist() == [False, False, False]


# -- fusions own their branches -----------------------------------------------------------------------

def test_each_fusion_defines_its_branch(tiny_batch):
    torch.manual_seed(0)
    concat = MultimodalModel(6, width=4, fusion="concat").eval()
    with torch.no_grad():
        output = concat(tiny_batch)
        blocks = concat.fusion.weight_blocks()
        by_hand = output.features["audio"] @ blocks["audio"].T + concat.fusion.head.bias  # W_a z_a + b, b once
    assert torch.allclose(output.logits_per_modality["audio"], by_hand, atol=1e-6)
    summed = MultimodalModel(6, width=4, fusion="sum").eval()
    with torch.no_grad():
        output = summed(tiny_batch)
        own_layer = summed.fusion.heads["visual"](output.features["visual"])  # W_v z_v + b_v, no audio bias
    assert torch.allclose(output.logits_per_modality["visual"], own_layer)
    shared = MultimodalModel(6, width=4, fusion="shared").eval()
    with torch.no_grad():
        output = shared(tiny_batch)
    assert torch.allclose(output.logits_per_modality["audio"], shared.fusion.head(output.features["audio"]))
    assert torch.allclose(output.logits, (output.logits_per_modality["audio"] + output.logits_per_modality["visual"]) / 2)


def test_gated_fusion_has_no_branch_for_its_gate_and_branch_methods_refuse_it(tiny_batch):
    gated = MultimodalModel(6, width=4, fusion="gated")
    assert gated.branch_modalities == ("audio",)  # the visual gate alone would predict a constant
    assert set(gated(tiny_batch).logits_per_modality) == {"audio"}
    for method in ("ogm_ge", "arl"):
        with pytest.raises(ConfigError, match="gated fusion has none for visual; use --fusion concat"):
            fit(tiny_config(method=method, fusion="gated", epochs=1))


def test_entropy_gating_weighs_the_confident_modality_per_sample():
    confident, unsure = torch.tensor([[8.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.1, 0.0]])
    fused = decision_level_fusion({"audio": confident, "visual": unsure}, "entropy")
    entropy = [float(-(torch.softmax(x, 1) * torch.log_softmax(x, 1)).sum()) for x in (confident, unsure)]
    weight = math.exp(-entropy[0]) / (math.exp(-entropy[0]) + math.exp(-entropy[1]))  # softmax of -H, by hand
    assert weight > 0.7 and torch.allclose(fused, weight * confident + (1 - weight) * unsure)
    per_sample = decision_level_fusion({"audio": torch.cat([confident, unsure]), "visual": torch.cat([unsure, confident])},
                                       "entropy")
    assert torch.allclose(per_sample[0], per_sample[1])  # each sample leans on its own confident modality
    fixed = decision_level_fusion({"audio": confident, "visual": unsure}, "fixed", {"audio": 0.55, "visual": 0.45})
    assert torch.allclose(fixed, 0.55 * confident + 0.45 * unsure)


# -- token features --------------------------------------------------------------------------------------

def test_tokens_average_to_the_pooled_features(tiny_batch):
    model = MultimodalModel(6, width=4).eval()
    with torch.no_grad():
        pooled = model.encode(tiny_batch)
        for m, encoder in model.encoders.items():
            tokens = encoder.tokens(tiny_batch[m])
            assert tokens.shape[0] == len(tiny_batch["label"]) and tokens.shape[2] == encoder.out_dim
            assert torch.allclose(tokens.mean(dim=1), pooled[m], atol=1e-6)


def test_visual_tokens_are_time_major():
    encoder = MultimodalModel(6, width=4).encoders["visual"].eval()
    frames = torch.randn(2, 3, 3, 16, 16)
    with torch.no_grad():
        tokens = encoder.tokens(frames)
        per_frame = [encoder.tokens(frames[:, t:t + 1]) for t in range(3)]
    assert torch.allclose(tokens, torch.cat(per_frame, dim=1), atol=1e-6)


@pytest.mark.parametrize("stride, audio_map, visual_map", [(32, (1, 1), (1, 1)), (16, (2, 1), (1, 1)),
                                                          (8, (3, 2), (2, 2)), (4, (6, 4), (4, 4))])
def test_the_output_stride_sets_the_number_of_tokens(stride, audio_map, visual_map):
    """A 24 x 16 spectrogram and 16 x 16 frames: the last map is the input over the stride, rounded up."""
    model = MultimodalModel(6, width=4, output_stride=stride).eval()
    with torch.no_grad():
        audio = model.encoders["audio"].tokens(torch.randn(2, 1, 24, 16))
        visual = model.encoders["visual"].tokens(torch.randn(2, 3, 3, 16, 16))
    assert audio.shape == (2, audio_map[0] * audio_map[1], 32)
    assert visual.shape == (2, 3 * visual_map[0] * visual_map[1], 32)  # three frames, time major


def test_the_book_ccat_attends_over_several_tokens_per_modality():
    """The preregistered protocol: on SynthAV's inputs CCAT's cross-attention sees more than one token each."""
    from mmlesson.recipes import RECIPES

    for name in ("synthav", "synthav-severe", "synthav-mild"):
        stride = RECIPES[name].methods["ccat"]["output_stride"]
        model = MultimodalModel(6, width=4, output_stride=stride).eval()
        with torch.no_grad():
            assert model.encoders["audio"].tokens(torch.randn(1, 1, 16, 16)).shape[1] >= 4
            assert model.encoders["visual"].tokens(torch.randn(1, 1, 3, 16, 16)).shape[1] >= 4


def test_a_stride_outside_resnet_is_refused():
    with pytest.raises(ValueError, match="output stride must be one of 4, 8, 16, 32"):
        MultimodalModel(6, width=4, output_stride=2)


# -- MLA ------------------------------------------------------------------------------------------------

def test_the_projector_by_hand():
    torch.manual_seed(0)
    r, alpha = torch.randn(6, dtype=torch.float64), 0.1
    projector = update_projector(torch.eye(6, dtype=torch.float64), r, alpha)
    unnormalised = torch.eye(6, dtype=torch.float64) - torch.outer(r, r) / (alpha + r @ r)
    assert torch.allclose(projector, unnormalised / torch.linalg.matrix_norm(unnormalised))
    assert torch.allclose(projector, projector.T)
    norm = torch.linalg.matrix_norm(unnormalised)
    assert torch.allclose(projector @ r * norm, r * alpha / (alpha + r @ r))  # P r = r alpha / (alpha + r'r)
    other = torch.randn(6, dtype=torch.float64)
    orthogonal = other - (other @ r) / (r @ r) * r
    assert torch.allclose(projector @ orthogonal * norm, orthogonal)  # directions orthogonal to r pass unchanged
    second = update_projector(projector, torch.randn(6, dtype=torch.float64), alpha)
    assert torch.allclose(second, second.T)


def test_mla_updates_each_encoder_only_with_its_own_loss(tiny_dataset, tiny_batch):
    method = METHODS["mla"](tiny_config(method="mla"))
    model = method.make_model(6, ("audio", "visual"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    for m in model.modalities:
        model.encoders[m].register_forward_hook(lambda module, inputs, output, m=m: seen.append(m))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = StepState(epoch=0, step=0, device=torch.device("cpu"), steps_per_epoch=6)
    stats = method.training_step(model, tiny_batch, optimizer, state)
    assert seen == ["audio", "visual"]  # one modality after the other, each its own forward
    assert stats["loss"] == pytest.approx(stats["loss_unimodal/audio"] + stats["loss_unimodal/visual"])
    assert method.state_dict()["projector"].shape == (model.fusion.head.in_features,) * 2
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("encoders.audio") for k in changed) and any(k.startswith("encoders.visual") for k in changed)
    assert "fusion.head.weight" in changed


def test_mla_trains_and_reads_back(tiny_dataset, tmp_path):
    run = fit(tiny_config(method="mla", epochs=2, out=str(tmp_path)), dataset=tiny_dataset)
    again = fit(tiny_config(method="mla", epochs=2, out=str(tmp_path)), dataset=tiny_dataset)
    assert again.status == "read back" and again.metrics["final"] == run.metrics["final"]
    assert set(run.metrics["history"][0]["val"]["contribution"]) == {"audio", "visual"}


# -- CCAT ------------------------------------------------------------------------------------------------

def test_a_zero_initialised_lora_leaves_the_classifier_unchanged():
    torch.manual_seed(0)
    lora = LoRA(dim=16, num_classes=6, rank=2, alpha=1.0)
    with torch.no_grad():
        assert float(lora(torch.randn(4, 16)).abs().max()) == 0.0
        lora.up.normal_()
        features = torch.randn(4, 16)
        assert torch.allclose(lora(features), 0.5 * features @ lora.down.T @ lora.up.T)  # alpha / r = 1 / 2


def stage_two_model(**options):
    method = METHODS["ccat"](ccat_config(**options))
    model = method.make_model(6, ("audio", "visual"))
    method.enter_stage(model, 1)
    return method, model


def test_entering_stage_two_freezes_the_classifier_and_starts_from_it(tiny_batch):
    torch.manual_seed(0)
    method, model = stage_two_model()
    assert model.decision_level and set(model.lora) == {"audio", "visual"}
    assert not any(p.requires_grad for p in model.classifier.parameters())
    model.eval()
    with torch.no_grad():
        output = model(tiny_batch)
        for m in model.modalities:  # Cls(z) + LoRA(z) equals the frozen Cls(z) at the start
            assert torch.equal(output.logits_per_modality[m], model.classifier(output.features[m]))


def test_a_modality_step_changes_only_its_encoder_and_lora(tiny_batch):
    torch.manual_seed(0)
    method, model = stage_two_model()
    model.train()
    optimizer = torch.optim.SGD(method.trainable(model, 1), lr=0.1, momentum=0.9)
    for _ in range(2):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        state = StepState(epoch=2, step=0, device=torch.device("cpu"), stage=1)
        loss, _ = method.unimodal_loss(model, tiny_batch, "audio", state)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
        assert changed and all(k.startswith(("encoders.audio", "lora.audio")) for k in changed)


def test_stage_two_never_moves_the_frozen_classifier(tiny_dataset, tmp_path):
    whole = fit(ccat_config(out=str(tmp_path / "b")), dataset=tiny_dataset, stop_after=2)
    classifier = {k: v.clone() for k, v in whole.model.classifier.state_dict().items()}
    finished = fit(ccat_config(out=str(tmp_path / "b")), dataset=tiny_dataset)
    assert states_equal(finished.model.classifier.state_dict(), classifier)
    assert [h["stage"] for h in finished.metrics["history"]] == ["classifier pre-training"] * 2 + ["alternating"] * 2
    assert finished.metrics["final"]["best_epoch"] >= 2  # selected within the final stage


def test_secondary_updates_train_on_the_samples_under_beta_only(tiny_batch):
    torch.manual_seed(0)
    method, model = stage_two_model(beta=0.5)
    model.train()
    sizes = []
    model.encoders["visual"].trunk.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    optimizer = torch.optim.SGD(method.trainable(model, 1), lr=0.1)
    stats = method.alternating_step(model, tiny_batch, optimizer, StepState(epoch=2, step=0, device=torch.device("cpu"),
                                                                             stage=1))
    batch = len(tiny_batch["label"])
    selected = round(stats["secondary_fraction/visual"] * batch)
    assert sizes[:2] == [batch, batch]  # the alternating step, then the contribution pass
    assert sizes[2:] == ([selected] if selected >= 2 else [])


@pytest.mark.parametrize("stop_after", [1, 2, 3])
def test_an_interrupted_ccat_run_resumes_to_the_same_result(tiny_dataset, tmp_path, stop_after):
    whole = fit(ccat_config(out=str(tmp_path / "whole")), dataset=tiny_dataset)
    config = ccat_config(out=str(tmp_path / "parts"))
    fit(config, dataset=tiny_dataset, stop_after=stop_after)  # inside stage 1, at the boundary, inside stage 2
    resumed = fit(config, dataset=tiny_dataset)
    assert resumed.status == "resumed"
    assert strip_seconds(resumed.metrics["history"]) == strip_seconds(whole.metrics["history"])
    assert resumed.metrics["final"] == whole.metrics["final"]
    assert states_equal(resumed.model.state_dict(), whole.model.state_dict())


def test_a_finished_ccat_run_reads_back_without_training(tiny_dataset, tmp_path):
    first = fit(ccat_config(out=str(tmp_path)), dataset=tiny_dataset)
    again = fit(ccat_config(out=str(tmp_path)), dataset=tiny_dataset)
    assert again.status == "read back" and set(again.model.lora) == {"audio", "visual"}
    assert states_equal(again.model.state_dict(), first.model.state_dict())


def test_stage_lengths_must_fit_the_run():
    with pytest.raises(ConfigError, match="must each train at least one epoch and add up to --epochs 4"):
        fit(ccat_config(classifier_epochs=4))


def test_the_printed_residual_needs_as_many_tokens_per_modality(tiny_dataset):
    knobs = dict(TINY_KNOBS, spec_steps=64)  # 2 audio tokens against 1 visual token
    with pytest.raises(ConfigError, match="use --bicross-residual symmetric"):
        fit(ccat_config(bicross_residual="printed", data_knobs=knobs))


def test_without_alternation_one_step_trains_both_modalities_on_the_fused_loss(tiny_batch):
    torch.manual_seed(0)
    method, model = stage_two_model(alternate=False, secondary=False)
    model.train()
    optimizer = torch.optim.SGD(method.trainable(model, 1), lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = method.alternating_step(model, tiny_batch, optimizer, StepState(epoch=2, step=0, device=torch.device("cpu"),
                                                                             stage=1))
    changed = {k.split(".")[0] + "." + k.split(".")[1] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert {"encoders.audio", "encoders.visual", "lora.audio", "lora.visual"} <= changed
    assert "loss_unimodal/audio" not in stats and stats["loss"] > 0
