"""CUDA paths (skipped on machines without a GPU, such as CI)."""
import pytest
import torch

from mmlesson import TrainConfig, fit
from mmlesson.methods import JointTraining, StepState
from mmlesson.models import MultimodalModel

from .conftest import TINY_KNOBS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_bf16_autocast_step_matches_float32_closely(tiny_batch):
    device = torch.device("cuda")
    batch = {k: v.to(device) for k, v in tiny_batch.items()}
    losses = {}
    for amp in (False, True):
        torch.manual_seed(0)
        model = MultimodalModel(6, width=8).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        stats = JointTraining(TrainConfig()).training_step(model, batch, optimizer, StepState(0, 0, device, amp=amp))
        losses[amp] = stats["loss"]
    assert abs(losses[True] - losses[False]) < 0.05 * abs(losses[False])


def test_fit_on_cuda_writes_cuda_metrics(tmp_path, tiny_dataset):
    config = TrainConfig.build(data_knobs=TINY_KNOBS, width=4, epochs=2, batch_size=16, device="cuda", out=str(tmp_path),
                         progress="off")
    metrics = fit(config, dataset=tiny_dataset).metrics
    assert metrics["env"]["device"].startswith("cuda")
    assert 0.0 <= metrics["final"]["test"]["acc"] <= 1.0 and set(metrics["final"]["test"]["probe_acc"]) == {"audio", "visual"}
