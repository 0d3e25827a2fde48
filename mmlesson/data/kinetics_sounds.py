"""Kinetics-Sounds (Arandjelovic & Zisserman, ICCV 2017): Kinetics clips of classes that can be heard.

The clip list is the one released with OGM-GE (Peng et al., CVPR 2022): 14,799 train / 2,597 test
10-s clips named ``<youtube id>_<start>_<end>`` with 31 numeric classes (0-30). No class names are
published with that list, so classes are named ``ks_00`` ... ``ks_30``; papers use 31 to 34 classes
(ARL's code declares 34), so a run on this list is a 31-class run and says so. The videos are not
redistributable: users bring their own, any container, named by clip id (``<clip id>.mp4`` etc.,
anywhere under RAW). Audio is read from each video's own track; clips missing from RAW are listed in
``missing.csv`` and skipped. Validation: 10% of each class of train, fixed sha256 order.
"""
from __future__ import annotations

from .cache import CacheParams
from .descriptor import REFERENCE_DIR, RealDataset, read_lines

HERE = REFERENCE_DIR / "kinetics_sounds"
NUM_CLASSES = 31


class KineticsSounds(RealDataset):
    name = "kinetics_sounds"
    title = "Kinetics-Sounds"
    description = "Kinetics-Sounds (OGM-GE list), 31 classes, 17,396 10-s clips (prepare from your own videos)"
    split_names = ("ogm_ge",)
    params = CacheParams("kinetics_sounds", clip_seconds=10.0, frames_per_clip=3, frame_size=224)

    def class_names(self) -> list[str]:
        return [f"ks_{c:02d}" for c in range(NUM_CLASSES)]

    def list_clips(self) -> list[dict]:
        rows = []
        for split, file in (("train", "my_train.txt"), ("test", "my_test.txt")):
            for line in read_lines(HERE / file):
                clip_id, _, label = line.split(",")
                rows.append({"clip_id": clip_id, "label": int(label), "group": clip_id[:11],
                             "official_split": split, "start": 0, "end": ""})
        return rows

    def expected_layout(self) -> str:
        return "a directory of your Kinetics-Sounds videos named <youtube id>_<start>_<end>.<ext> (any depth)"
