"""AVE, the Audio-Visual Event data set (Tian et al., ECCV 2018): 4,143 10-s YouTube videos of 28
event categories, each annotated with the seconds ``[start, end)`` in which the event is both heard
and seen; official split 3,339 / 402 / 402 (train / val / test).

Each annotated event becomes one clip, cut to its event: frames at 1 fps inside ``[start, end)`` and
the audio of that interval (tiled to the cache's clip length, as for every data set). 45 videos carry
two events of different categories; they give two clips, ``<video id>_<class index>``. Users bring the
videos, ``<video id>.<ext>`` anywhere under RAW; missing ones are listed in ``missing.csv``.
"""
from __future__ import annotations

from .cache import CacheParams
from .descriptor import REFERENCE_DIR, RealDataset, read_lines

HERE = REFERENCE_DIR / "ave"


class AVE(RealDataset):
    name = "ave"
    title = "AVE"
    description = "AVE audio-visual events, 28 classes, 4,143 clips cut to their event (prepare from your own videos)"
    split_names = ("official",)
    params = CacheParams("ave", clip_seconds=10.0, frames_per_clip=3, frame_size=224)

    def class_names(self) -> list[str]:
        return read_lines(HERE / "categories.txt")

    def list_clips(self) -> list[dict]:
        names = self.class_names()
        rows = []
        for split, file in (("train", "trainSet.txt"), ("val", "valSet.txt"), ("test", "testSet.txt")):
            for line in read_lines(HERE / file):
                category, video_id, _, start, end = line.split("&")
                label = names.index(category)
                rows.append({"clip_id": f"{video_id}_{label:02d}", "label": label, "group": video_id,
                             "official_split": split, "start": int(start), "end": int(end)})
        return rows

    def video_name(self, row: dict) -> str:
        return row["group"]  # the YouTube id: one video may hold two events

    def expected_layout(self) -> str:
        return "a directory of your AVE videos named <youtube id>.<ext> (any depth)"
