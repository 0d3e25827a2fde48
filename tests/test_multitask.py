"""The uniform multitask control: its update is the gradient of CE(fused) + CE(audio) + CE(visual), written
out here from the definition with the model's own layers (the concat head on [z_a; z_v], each separate head on
its modality's features), and with split heads it is ARL's Eq. 22 at gamma 1 without asymmetric learning."""
import copy

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig
from mmlesson.errors import ConfigError
from mmlesson.methods import METHODS, StepState
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

LR = 0.5


def config(**overrides):
    return TrainConfig.build(**{"method": "multitask", "data_knobs": TINY_KNOBS, "width": 4, "device": "cpu",
                                "progress": "off", **overrides})


def prepared(tiny_dataset, method):
    torch.manual_seed(0)
    model = MultimodalModel(tiny_dataset.num_classes, width=4).train()
    return method.prepare_model(model)


def sgd_step(method, model, batch):
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    return method.training_step(model, batch, optimizer, StepState(0, 0, torch.device("cpu")))


def test_one_step_is_sgd_on_the_sum_of_the_three_cross_entropies(tiny_dataset, tiny_batch):
    method = METHODS["multitask"](config())
    model = prepared(tiny_dataset, method)
    assert set(model.unimodal_heads) == {"audio", "visual"}
    reference = copy.deepcopy(model)
    stats = sgd_step(method, model, tiny_batch)

    labels = tiny_batch["label"]
    z = {m: reference.encoders[m](tiny_batch[m]) for m in ("audio", "visual")}
    fused = reference.fusion.head(torch.cat([z["audio"], z["visual"]], dim=1))
    loss = F.cross_entropy(fused, labels) + sum(F.cross_entropy(reference.unimodal_heads[m](z[m]), labels)
                                                for m in ("audio", "visual"))
    loss.backward()
    assert stats["loss"] == pytest.approx(loss.item(), rel=1e-6)
    after = dict(model.named_parameters())
    for name, p in reference.named_parameters():
        torch.testing.assert_close(after[name].detach(), (p - LR * p.grad).detach(), rtol=0, atol=1e-6, msg=name)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in reference.unimodal_heads.parameters())


def test_split_heads_add_no_parameter_and_equal_arl_at_gamma_one_without_asymmetry(tiny_dataset, tiny_batch):
    multitask = METHODS["multitask"](config(unimodal_heads="split"))
    arl = METHODS["arl"](config(method="arl", gamma=1.0, asymmetric=False))
    model = prepared(tiny_dataset, multitask)
    assert not hasattr(model, "unimodal_heads")
    twin = arl.prepare_model(copy.deepcopy(model))
    sgd_step(multitask, model, tiny_batch)
    sgd_step(arl, twin, tiny_batch)
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)


def test_split_heads_need_both_branches_and_bad_heads_are_refused(tiny_dataset):
    method = METHODS["multitask"](config(unimodal_heads="split", fusion="gated"))
    with pytest.raises(ConfigError):
        method.prepare_model(MultimodalModel(tiny_dataset.num_classes, fusion="gated", width=4))
    with pytest.raises(ConfigError, match="--unimodal-heads"):
        config(unimodal_heads="shared")
