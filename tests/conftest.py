import atexit
import os
import shutil
import tempfile

import pytest
import torch

from mmlesson.data import load

os.environ.setdefault("MMLESSON_BATCH", "1")
if "MMLESSON_RESULTS" not in os.environ:  # one fresh run store for the session: chapters under nbval share it
    STORE = tempfile.mkdtemp(prefix="mmlesson-test-store-")
    os.environ["MMLESSON_RESULTS"] = STORE
    atexit.register(shutil.rmtree, STORE, ignore_errors=True)
torch.set_num_threads(1)  # the book's small models are fastest single-threaded, and tests never oversubscribe

TINY_KNOBS = dict(train_size=96, val_size=48, test_size=48, spec_bins=16, spec_steps=16, frame_size=16,
                  audio_strength=1.0, visual_strength=0.6)


@pytest.fixture(scope="session")
def tiny_dataset():
    return load("synthav", **TINY_KNOBS)


@pytest.fixture
def tiny_batch(tiny_dataset):
    return next(tiny_dataset.train.batches(12))
