"""CREMA-D (Cao et al., IEEE Trans. Affective Computing 2014): 7,442 clips of 91 actors speaking 12
sentences with one of six emotions; audio ``AudioWAV/<id>.wav`` (16 kHz mono PCM), video
``VideoFlash/<id>.flv`` (VP6F 480x360, 29.97 fps). Clip ids read ``<actor>_<sentence>_<emotion>_<level>``.

Splits (``split`` knob of ``mmlesson.data.load("cremad", ...)``):
* ``ogm_ge`` (default): the train / test lists released with OGM-GE (Peng et al., CVPR 2022), 6,698 /
  744 clips, used by most follow-up work; validation = 10% of each class of train, carved in a fixed
  sha256 order of the clip ids (``val_fraction``). Actors appear in both train and test.
* ``speaker``: speaker-independent. The 91 actors are put in a fixed sha256 order of their ids; the
  first 10% of them (9 actors) form test, the next 10% validation, the rest train, so no actor's
  voice or face is seen in two splits.
The class order is OGM-GE's (its ``stat.csv``): NEU, HAP, SAD, FEA, DIS, ANG.
"""
from __future__ import annotations

from pathlib import Path

from .cache import CacheParams
from .descriptor import REFERENCE_DIR, ClipMedia, RealDataset, official_splits, read_lines, stable_key

HERE = REFERENCE_DIR / "cremad"
MEDIA_URL = "https://media.githubusercontent.com/media/CheyneyComputerScience/CREMA-D/master/"


class CremaD(RealDataset):
    name = "cremad"
    title = "CREMA-D"
    description = "CREMA-D emotions, 6 classes, 7,442 clips (prepare from AudioWAV/ + VideoFlash/ or --download)"
    split_names = ("ogm_ge", "speaker")
    # OGM-GE's audio front-end; up to 3 frames at 1 fps (clips last 2-3 s), stored at 224 x 224
    params = CacheParams("cremad", clip_seconds=3.0, frames_per_clip=3, frame_size=224)
    downloadable = True
    media_url = MEDIA_URL

    def class_names(self) -> list[str]:
        return read_lines(HERE / "stat.csv")

    def list_clips(self) -> list[dict]:
        names = self.class_names()
        rows = []
        for split in ("train", "test"):
            for line in read_lines(HERE / f"{split}.csv"):
                clip_id, emotion = line.split(",")
                rows.append({"clip_id": clip_id, "label": names.index(emotion), "group": clip_id.split("_")[0],
                             "official_split": split, "start": 0, "end": ""})
        return rows

    def manifest(self) -> list[dict]:
        """``path, size, sha256`` of every official media file (from the Git LFS pointers)."""
        rows = []
        for line in read_lines(HERE / "manifest.csv")[1:]:
            path, size, sha256 = line.split(",")
            rows.append({"path": path, "size": int(size), "sha256": sha256})
        return rows

    def find_media(self, raw: Path, clips: list[dict]) -> dict[str, ClipMedia]:
        found = {}
        for row in clips:
            audio = raw / "AudioWAV" / f"{row['clip_id']}.wav"
            video = raw / "VideoFlash" / f"{row['clip_id']}.flv"
            if audio.exists() or video.exists():
                found[row["clip_id"]] = ClipMedia(video=video if video.exists() else None,
                                                  audio=audio if audio.exists() else None, audio_from_video=False)
        return found

    def expected_layout(self) -> str:
        return "a directory holding AudioWAV/*.wav and VideoFlash/*.flv (or add --download to fetch them into RAW)"

    def split_indices(self, clips: list[dict], split: str, val_fraction: float) -> dict[str, list[int]]:
        self.check_split(split)
        if split == "ogm_ge":
            return official_splits(clips, val_fraction)
        actors = sorted({row["group"] for row in clips}, key=lambda a: stable_key(f"cremad-actor-{a}"))
        held_out = max(1, int(round(val_fraction * len(actors))))
        test_actors, val_actors = set(actors[:held_out]), set(actors[held_out:2 * held_out])
        by_split = {"train": [], "val": [], "test": []}
        for position, row in enumerate(clips):
            group = row["group"]
            by_split["test" if group in test_actors else "val" if group in val_actors else "train"].append(position)
        return by_split
