import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from mmlesson import matched
from mmlesson.data import load
from mmlesson.models import MultimodalModel
from mmlesson.models.fusion import ConcatFusion

os.environ.setdefault("MMLESSON_BATCH", "1")
if "MMLESSON_RESULTS" not in os.environ:  # one fresh run store for the session: chapters under nbval share it
    STORE = tempfile.mkdtemp(prefix="mmlesson-test-store-")
    os.environ["MMLESSON_RESULTS"] = STORE
    atexit.register(shutil.rmtree, STORE, ignore_errors=True)
torch.set_num_threads(1)  # the book's small models are fastest single-threaded, and tests never oversubscribe

TINY_KNOBS = dict(train_size=96, val_size=48, test_size=48, spec_bins=16, spec_steps=16, frame_size=16,
                  audio_strength=1.0, visual_strength=0.6)


def tiny_grid_text(name: str, arms: str, seeds=(0,), epochs: int = 2, title: str = "a grid of a test") -> str:
    """A grid file's text: ``arms`` (TOML ``[arms.NAME]`` tables) over ``seeds`` on the tiny SynthAV setting,
    width-4 models without probes, ``epochs`` epochs."""
    knobs = ", ".join(f"{k} = {v}" for k, v in TINY_KNOBS.items())
    return (f'name = "{name}"\ntitle = "{title}"\nseeds = {list(seeds)}\n[data.tiny]\ndata = "synthav"\n'
            f"data_knobs = {{ {knobs} }}\n[train]\nwidth = 4\nbatch_size = 16\nprobe = false\nepochs = {epochs}\n"
            f"{arms.strip()}\n")


@pytest.fixture(scope="session")
def tiny_dataset():
    return load("synthav", **TINY_KNOBS)


@pytest.fixture
def tiny_batch(tiny_dataset):
    return next(tiny_dataset.train.batches(12))


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The book built once for the session from the stored notebooks, with warnings as errors (``make html``'s
    command); the build's output folder (its HTML under ``_build/html``). Both the build test and the rendered-
    book test read it, so the slow suite builds the book once."""
    out = tmp_path_factory.mktemp("built-book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else shutil.which("jupyter-book"), "build",
               str(Path(__file__).resolve().parents[1]), "--path-output", str(out), "-W", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out


class LinearEncoder(nn.Module):
    """A bias-free linear map: no batch norm, so evaluation mode is training mode and phi(0) = 0 (the methods'
    hand-computed tests use it where a closed form needs a linear model)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim, bias=False)
        self.out_dim = out_dim

    def forward(self, x):
        return self.linear(x)


def linear_model(seed: int = 0) -> MultimodalModel:
    """Audio 4 -> 3, visual 5 -> 3, concat head 6 -> 3 with a nonzero bias, in float64."""
    torch.manual_seed(seed)
    model = MultimodalModel(3, width=4)
    model.encoders = nn.ModuleDict({"audio": LinearEncoder(4, 3), "visual": LinearEncoder(5, 3)})
    model.fusion = ConcatFusion({"audio": 3, "visual": 3}, 3)
    nn.init.normal_(model.fusion.head.bias)
    return model.double().train()


def assert_stored_seed_0_found_again(stored, retrained, arm: str) -> None:
    """``arm``'s seed-0 run retrained (``retrained``, a study's rows) lands, in every regime, on its stored
    one-thread run (``stored``) at the same rate and within ``matched.rerun_tolerance`` of each score."""
    for regime in matched.REGIMES:
        row = retrained[(retrained["regime"] == regime) & (retrained["arm"] == arm)].iloc[0]
        theirs = stored[(stored["regime"] == regime) & (stored["arm"] == arm) & (stored["seed"] == 0)
                        & (stored["execution"] == matched.ONE_THREAD)].iloc[0]
        assert row["lr"] == theirs["lr"]
        for column in ("test acc", "val acc", "branch visual", "probe visual"):
            tolerance = matched.rerun_tolerance(stored, regime, arm, column)
            assert abs(row[column] - theirs[column]) <= tolerance, (regime, column, row[column], theirs[column])
