"""Fabricated raw layouts of CREMA-D, Kinetics-Sounds and AVE, shared by the data-pipeline tests."""
from mmlesson.data import REAL_DATASETS
from mmlesson.data.audio import CLIP_SECONDS, SAMPLE_RATE, fixed_length_spectrogram, load_waveform

CREMAD = REAL_DATASETS["cremad"]
KS = REAL_DATASETS["kinetics_sounds"]
AVE = REAL_DATASETS["ave"]
FRAME_SIZE = 24  # small stored frames keep the tests fast; the real default is 224


def cremad_clip_ids(actors=("1001", "1002", "1003", "1004")) -> list[str]:
    """Three training clips of different emotions and one test clip of each actor (real ids of the
    OGM-GE lists, so the shipped split applies)."""
    rows = CREMAD.list_clips()
    chosen = []
    for actor in actors:
        mine = [r for r in rows if r["group"] == actor]
        emotions = set()
        for row in mine:
            if row["official_split"] == "train" and row["label"] not in emotions and len(emotions) < 3:
                emotions.add(row["label"])
                chosen.append(row["clip_id"])
        chosen.append(next(r["clip_id"] for r in mine if r["official_split"] == "test"))
    return chosen


def ks_clips() -> list[tuple[str, int]]:
    """Three training clips of each of classes 0 and 1, and three test clips."""
    rows = KS.list_clips()
    train = []
    for label in (0, 1):
        train += [r for r in rows if r["official_split"] == "train" and r["label"] == label][:3]
    test = [r for r in rows if r["official_split"] == "test"][:3]
    return [(r["clip_id"], r["label"]) for r in train + test]


def ave_rows() -> list[dict]:
    """Clips from each AVE split, including a short event (not starting at 0)."""
    rows = AVE.list_clips()
    chosen = []
    for split in ("train", "val", "test"):
        mine = [r for r in rows if r["official_split"] == split]
        chosen += mine[:3]
        chosen += [r for r in mine if 0 < r["start"] and r["end"] - r["start"] <= 3][:1]
    return chosen


def clip_spectrogram(path, sample_rate: int = SAMPLE_RATE, seconds: float = CLIP_SECONDS):
    """The audio protocol for one file, as preparation applies it: load, tile to ``seconds``, clip to
    [-1, 1], log spectrogram (the reference the tests compare the cache against)."""
    return fixed_length_spectrogram(load_waveform(path, sample_rate), sample_rate, seconds)


def book_cremad_clip_ids(train_per_class: int = 12, test_per_class: int = 5) -> list[str]:
    """Clips of every emotion from the shipped OGM-GE lists, spread over the actors in list order: enough for a
    chapter's smoke run (every class in every split, more test clips than a t-SNE's perplexity needs)."""
    chosen, counts = [], {}
    for row in CREMAD.list_clips():
        key = (row["official_split"], row["label"])
        wanted = train_per_class if row["official_split"] == "train" else test_per_class
        if counts.get(key, 0) < wanted:
            counts[key] = counts.get(key, 0) + 1
            chosen.append(row["clip_id"])
    return chosen


def book_ks_clips(classes: int = 6, train_per_class: int = 8, test_per_class: int = 4) -> list[tuple[str, int]]:
    """Kinetics-Sounds clips of the first ``classes`` classes, from the shipped lists."""
    chosen, counts = [], {}
    for row in KS.list_clips():
        key = (row["official_split"], row["label"])
        wanted = train_per_class if row["official_split"] == "train" else test_per_class
        if row["label"] < classes and counts.get(key, 0) < wanted:
            counts[key] = counts.get(key, 0) + 1
            chosen.append((row["clip_id"], row["label"]))
    return chosen


def prepare_book_caches(directory) -> dict:
    """Small prepared caches of CREMA-D and Kinetics-Sounds in ``directory`` (fabricated media, the shipped split
    lists), as a reader's Colab session would have them: ``{data set: cache root}``."""
    from pathlib import Path

    from mmlesson.data.fabricate import fabricate_cremad, fabricate_videos
    from mmlesson.data.prepare import prepare

    directory = Path(directory)
    fabricate_cremad(directory / "cremad-raw", book_cremad_clip_ids(), CREMAD.class_names())
    prepare(CREMAD, directory / "cremad-raw", directory / "cremad", workers=1, frame_size=FRAME_SIZE)
    fabricate_videos(directory / "ks-raw", book_ks_clips(), seconds=4.0)
    prepare(KS, directory / "ks-raw", directory / "kinetics_sounds", workers=1, frame_size=FRAME_SIZE, clip_seconds=4.0)
    return {"cremad": directory / "cremad", "kinetics_sounds": directory / "kinetics_sounds"}


if __name__ == "__main__":  # python -m tests.data_fixtures DIR: the caches the real-data chapter test uses
    import sys

    print(prepare_book_caches(sys.argv[1]))
