import os

import pytest
import torch

from mmlesson.data import load

os.environ.setdefault("MMLESSON_BATCH", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))

TINY_KNOBS = dict(train_size=96, val_size=48, test_size=48, spec_bins=16, spec_steps=16, frame_size=16,
                  audio_strength=1.0, visual_strength=0.6)


@pytest.fixture(scope="session")
def tiny_dataset():
    return load("synthav", **TINY_KNOBS)


@pytest.fixture
def tiny_batch(tiny_dataset):
    return next(tiny_dataset.train.batches(12))
