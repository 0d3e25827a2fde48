"""CUDA paths (skipped on machines without a GPU, such as CI)."""
import pytest
import torch

from mmlesson import TrainConfig, fit
from mmlesson.rundir import RunDirectory
from mmlesson.methods import METHODS, JointTraining, StepState
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


# the options a short run of each method needs (frozen_encoders: its own test below)
SHORT_RUN_OPTIONS = {"joint": {}, "unimodal": {"modality": "audio"}, "ogm_ge": {}, "arl": {}, "mla": {},
                     "ccat": {"classifier_epochs": 1}}


def cuda_config(tmp_path, **overrides):
    return TrainConfig.build(**{"data_knobs": TINY_KNOBS, "width": 4, "epochs": 2, "batch_size": 16, "probe": False,
                                "device": "cuda", "progress": "off", "out": str(tmp_path), **overrides})


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"frozen_encoders"}))
def test_every_method_trains_a_short_run_on_cuda(method, tmp_path, tiny_dataset):
    metrics = fit(cuda_config(tmp_path, method=method, **SHORT_RUN_OPTIONS[method]), dataset=tiny_dataset).metrics
    assert metrics["env"]["device"].startswith("cuda") and metrics["config"]["amp"] is True
    assert len(metrics["history"]) == 2 and 0.0 <= metrics["final"]["test"]["acc"] <= 1.0


def test_frozen_encoders_train_on_cuda_from_unimodal_cuda_runs(tmp_path, tiny_dataset):
    encoders = [str(fit(cuda_config(tmp_path / m, method="unimodal", modality=m), dataset=tiny_dataset).out)
                for m in ("audio", "visual")]
    metrics = fit(cuda_config(tmp_path / "frozen", method="frozen_encoders", encoders_from=encoders),
                  dataset=tiny_dataset).metrics
    assert metrics["env"]["device"].startswith("cuda") and len(metrics["history"]) == 2


def test_an_interrupted_cuda_run_resumes_from_its_checkpoint(tmp_path, tiny_dataset):
    config = cuda_config(tmp_path, epochs=3)
    partial = fit(config, dataset=tiny_dataset, stop_after=1)
    assert partial.metrics["final"] is None and (tmp_path / RunDirectory.CHECKPOINT).exists()
    resumed = fit(config, dataset=tiny_dataset)
    assert resumed.status == "resumed" and len(resumed.metrics["history"]) == 3
    assert resumed.metrics["history"][0] == partial.metrics["history"][0]  # the first epoch is not trained again
    assert resumed.metrics["env"]["device"].startswith("cuda")


@pytest.mark.parametrize("method", sorted(m for m in METHODS if m not in ("unimodal", "frozen_encoders")))
def test_every_method_resumes_on_cuda(method, tmp_path, tiny_dataset):
    """The contract suite's resume on the GPU: method state (MLA's projector) must come back on the device."""
    config = cuda_config(tmp_path, epochs=3, method=method, **METHODS[method].tiny_options)
    fit(config, dataset=tiny_dataset, stop_after=1)
    resumed = fit(config, dataset=tiny_dataset)
    assert resumed.status == "resumed" and len(resumed.metrics["history"]) == 3
    assert all(torch.isfinite(torch.tensor([row["train"]["loss"] for row in resumed.metrics["history"]])))
