"""Raw media -> cache -> batches -> one training epoch, on fabricated copies of the real layouts:
CREMA-D (AudioWAV/*.wav 16 kHz PCM + VideoFlash/*.flv), Kinetics-Sounds and AVE (user videos)."""
import json
import shutil

import numpy as np
import pytest
import torch

from mmlesson.data import load
from mmlesson.data.audio import fixed_length_spectrogram
from mmlesson.data.cache import (ARRAY_FILES, BUILD_FILE, META_FILE, CacheError, CacheWriter, open_cache)
from mmlesson.data.fabricate import class_frames, fabricate_cremad, fabricate_videos, write_video
from mmlesson.data.media import DecoderMissing, read_audio_track, read_frames
from mmlesson.data.prepare import prepare
from mmlesson.engine import fit

from .data_fixtures import AVE, CREMAD, FRAME_SIZE, KS, ave_rows, clip_spectrogram, cremad_clip_ids, ks_clips

BROKEN = {"corrupt_audio": "1005_DFA_ANG_XX", "no_video": "1005_DFA_DIS_XX", "truncated_video": "1005_DFA_FEA_XX",
          "truncated_audio": "1005_DFA_HAP_XX"}
LISTED, CACHED = len(cremad_clip_ids()) + len(BROKEN), len(cremad_clip_ids())


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def make_cremad_raw(raw):
    fabricate_cremad(raw, cremad_clip_ids() + list(BROKEN.values()), CREMAD.class_names())
    (raw / "AudioWAV" / f"{BROKEN['corrupt_audio']}.wav").write_bytes(b"RIFF\x00\x00not a wave file")
    (raw / "VideoFlash" / f"{BROKEN['no_video']}.flv").unlink()
    cut_in_half(raw / "VideoFlash" / f"{BROKEN['truncated_video']}.flv")
    cut_in_half(raw / "AudioWAV" / f"{BROKEN['truncated_audio']}.wav")
    return raw


@pytest.fixture(scope="module")
def cremad_cache(tmp_path_factory):
    raw = make_cremad_raw(tmp_path_factory.mktemp("cremad_raw"))
    root = tmp_path_factory.mktemp("cache") / "cremad"
    summary = prepare(CREMAD, raw, root, workers=2, frame_size=FRAME_SIZE)
    return raw, root, summary


def read_csv(path):
    lines = path.read_text().splitlines()
    return [dict(zip(lines[0].split(","), line.split(",", 1))) for line in lines[1:]]


def test_cremad_cache_holds_the_protocol_arrays_and_lists_what_it_left_out(cremad_cache):
    raw, root, summary = cremad_cache
    meta = json.loads((root / META_FILE).read_text())
    assert meta["format_version"] == 1 and meta["params"]["frame_size"] == FRAME_SIZE
    assert meta["counts"] == {"listed": LISTED, "cached": CACHED, "rejected": 4,
                              "per_class": meta["counts"]["per_class"]}
    assert meta["class_names"] == ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]
    assert not (root / BUILD_FILE).exists()
    rejected = {row["clip_id"]: row["reason"] for row in read_csv(root / "rejected.csv")}
    assert rejected[BROKEN["no_video"]] == "no video file"
    assert "LibsndfileError" in rejected[BROKEN["corrupt_audio"]]
    assert rejected[BROKEN["truncated_video"]].startswith(f"{BROKEN['truncated_video']}.flv is truncated: its video ends")
    assert rejected[BROKEN["truncated_audio"]].startswith(f"{BROKEN['truncated_audio']}.wav is truncated: 19")
    assert len(read_csv(root / "missing.csv")) == 7442 - LISTED  # the rest of the shipped list

    cache = open_cache(root, "cremad", verify=True)
    clip = cremad_clip_ids()[0]
    index = [row["clip_id"] for row in cache.clips].index(clip)
    expected = clip_spectrogram(raw / "AudioWAV" / f"{clip}.wav").astype(np.float16)
    assert cache.audio.dtype == np.float16 and cache.audio.shape[1:] == (257, 188)
    np.testing.assert_array_equal(cache.audio[index], expected)  # OGM-GE's front-end, stored as float16
    frames = read_frames(raw / "VideoFlash" / f"{clip}.flv", FRAME_SIZE, 3)
    np.testing.assert_array_equal(cache.frames[index], frames)
    # 2.5-s clips at 1 fps: the frames of seconds 0, 1, 2 (red = 40 x second + 20, up to codec error)
    assert cache.frame_count[index] == 3
    np.testing.assert_allclose(cache.frames[index, :, :, :, 0].mean(axis=(1, 2)), [20, 60, 100], atol=8)


def test_a_second_run_on_a_complete_cache_does_nothing(cremad_cache):
    raw, root, _ = cremad_cache
    stamps = {f: (root / f).stat().st_mtime_ns for f in (META_FILE, *ARRAY_FILES.values())}
    summary = prepare(CREMAD, raw, root, workers=2, frame_size=FRAME_SIZE)
    assert summary["processed"] == 0 and summary["cached"] == CACHED
    assert stamps == {f: (root / f).stat().st_mtime_ns for f in stamps}


def test_a_cache_of_other_parameters_or_format_is_refused_with_the_rebuild_command(cremad_cache, tmp_path):
    raw, root, _ = cremad_cache
    with pytest.raises(CacheError, match=r"frame_size differ.*mmlesson data prepare cremad --raw RAW .* --rebuild"):
        prepare(CREMAD, raw, root, workers=1, frame_size=FRAME_SIZE + 8)
    fewer = shutil.copytree(raw, tmp_path / "fewer")
    for path in fewer.rglob(f"{cremad_clip_ids()[0]}.*"):
        path.unlink()
    with pytest.raises(CacheError, match=r"a cache of another set of clips .* --rebuild"):
        prepare(CREMAD, fewer, root, workers=1, frame_size=FRAME_SIZE)
    old = tmp_path / "old"
    shutil.copytree(root, old)
    meta = json.loads((old / META_FILE).read_text())
    meta["format_version"] = 0
    (old / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(CacheError, match=r"format version 0, this mmlesson reads version 1; rebuild it: "
                                         r"mmlesson data prepare cremad --raw RAW --root .* --rebuild"):
        load("cremad", root=old)
    with pytest.raises(CacheError, match="holds a cremad cache, not ave"):
        load("ave", root=root)
    with pytest.raises(CacheError, match=r"no prepared cremad cache at .*; prepare one with: mmlesson data prepare"):
        load("cremad", root=tmp_path / "nowhere")
    with pytest.raises(CacheError, match=r"needs the root of a prepared cache"):
        load("cremad")


def test_batches_match_synthav_and_evaluation_is_fixed(cremad_cache, tiny_dataset):
    _, root, _ = cremad_cache
    data = load("cremad", root=root)
    synth = next(tiny_dataset.train.batches(4))
    real = next(data.train.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert set(real) == set(synth)
    for key in real:
        assert real[key].dtype == synth[key].dtype and real[key].dim() == synth[key].dim()
    assert real["audio"].shape[1:] == (1, 257, 188) and real["visual"].shape[1:] == (1, 3, FRAME_SIZE, FRAME_SIZE)
    first = [b["visual"] for b in data.test.batches(3)]
    again = [b["visual"] for b in data.test.batches(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    # evaluation shows the middle stored frame, ImageNet-normalised
    index = data.test.rows[0]
    raw_frame = torch.from_numpy(np.array(data.test.cache.frames[index, 1])).permute(2, 0, 1).float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406])[:, None, None], torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(first[0][0, 0], (raw_frame - mean) / std)


def test_training_draws_are_reproducible_and_the_in_memory_path_equals_the_memmap_path(cremad_cache):
    _, root, _ = cremad_cache
    memmap = load("cremad", root=root, num_frames=2, spec_mask=0.2)
    memory = load("cremad", root=root, num_frames=2, spec_mask=0.2, resident=True)

    def epoch(data, seed):
        return list(data.train.batches(5, shuffle=True, generator=torch.Generator().manual_seed(seed)))
    a, b, c = epoch(memmap, 0), epoch(memory, 0), epoch(memmap, 1)
    for x, y in zip(a, b):
        for key in x:
            assert torch.equal(x[key], y[key]), key
    assert not torch.equal(a[0]["visual"], c[0]["visual"])  # another epoch, other crops
    for x in a:
        assert x["visual"].shape[1] == 2 and torch.isfinite(x["audio"]).all()


def test_splits_ogm_ge_and_speaker_independent(cremad_cache):
    _, root, _ = cremad_cache
    data = load("cremad", root=root)
    clips = data.train.cache.clips
    test_ids = {clips[r]["clip_id"] for r in data.test.rows}
    assert test_ids == {c["clip_id"] for c in clips if c["official_split"] == "test"} - set(BROKEN.values())
    assert len(data.val) >= 1 and not set(data.val.rows) & set(data.train.rows)
    assert np.array_equal(load("cremad", root=root).val.rows, data.val.rows)  # carved deterministically
    speaker = load("cremad", root=root, split="speaker")
    actors = {name: {clips[r]["group"] for r in getattr(speaker, name).rows} for name in ("train", "val", "test")}
    assert not (actors["train"] & actors["val"]) and not (actors["train"] & actors["test"])
    assert not (actors["val"] & actors["test"])
    assert sum(len(getattr(speaker, n)) for n in ("train", "val", "test")) == CACHED
    with pytest.raises(Exception, match="unknown split 'random' for cremad; choose one of: ogm_ge, speaker"):
        load("cremad", root=root, split="random")


def test_one_training_epoch_from_the_cache(cremad_cache, tmp_path):
    _, root, _ = cremad_cache
    result = fit(data="cremad", data_root=str(root), epochs=1, width=4, batch_size=4, seed=0, probe=True,
                 out=str(tmp_path / "run"))
    final = result.metrics["final"]["test"]
    assert np.isfinite(result.metrics["history"][0]["train"]["loss"])
    assert len(final["per_class_acc"]) == 6 and set(final["probe_acc"]) == {"audio", "visual"}
    assert result.metrics["data"]["knobs"]["split"] == "ogm_ge"
    assert result.metrics["data"]["cache"]["counts"]["cached"] == CACHED


def test_a_run_resumes_after_its_cache_is_moved_and_its_root_is_spelled_otherwise(cremad_cache, tmp_path,
                                                                                 monkeypatch):
    import shutil

    from mmlesson.data import identity

    _, root, _ = cremad_cache
    options = dict(data="cremad", epochs=3, width=4, batch_size=4, seed=0, probe=False, progress="off")
    whole = fit(data_root=str(root), out=str(tmp_path / "whole"), **options)
    fit(data_root=str(root), out=str(tmp_path / "run"), stop_after=1, **options)
    moved = tmp_path / "elsewhere" / "cremad-cache"
    shutil.copytree(root, moved)
    assert identity("cremad", root=str(moved) + "/") == identity("cremad", root=root)
    monkeypatch.chdir(tmp_path / "elsewhere")
    resumed = fit(data_root="cremad-cache/", out=str(tmp_path / "run"), device="cpu",
                  data_knobs={"resident": False, "verify": True}, **options)  # neither is the data's content
    assert [h["train"] for h in resumed.metrics["history"]] == [h["train"] for h in whole.metrics["history"]]
    assert resumed.metrics["final"] == whole.metrics["final"]
    assert resumed.metrics["identity"]["data"]["cache"]["sha256"] == whole.metrics["identity"]["data"]["cache"]["sha256"]


def test_an_interrupted_build_is_never_read_and_resumes_to_the_same_cache(cremad_cache, tmp_path, monkeypatch):
    raw, complete, _ = cremad_cache
    root = tmp_path / "cremad"
    original, calls = CacheWriter.write, {"n": 0}

    def crash_after_five(self, index, spectrogram, frames):
        calls["n"] += 1
        if calls["n"] == 4:  # killed between a clip's arrays and its status byte
            self.arrays["audio"][index] = spectrogram.astype(np.float16)
            raise KeyboardInterrupt
        return original(self, index, spectrogram, frames)
    monkeypatch.setattr(CacheWriter, "write", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        prepare(CREMAD, raw, root, workers=1, frame_size=FRAME_SIZE)
    monkeypatch.setattr(CacheWriter, "write", original)
    assert (root / BUILD_FILE).exists() and not (root / META_FILE).exists()
    with pytest.raises(CacheError, match=r"holds an interrupted build of cremad \(no meta.json\); run it \(again\)"):
        load("cremad", root=root)
    status = np.load(root / "status.npy")
    assert (status == 1).sum() == 3  # the fourth clip's half-written arrays are not marked as cached
    summary = prepare(CREMAD, raw, root, workers=1, frame_size=FRAME_SIZE)
    assert summary["processed"] == LISTED - 3
    for name, file in ARRAY_FILES.items():
        np.testing.assert_array_equal(np.load(root / file), np.load(complete / file), err_msg=name)
    assert (root / "rejected.csv").read_text().count("\n") == 1 + 4  # header + 4, no duplicate lines


def test_no_decoder_names_what_to_install(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def without_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", without_av)
    (tmp_path / "raw").mkdir()
    with pytest.raises(DecoderMissing, match=r"needs PyAV .*: pip install av"):
        prepare(CREMAD, tmp_path / "raw", tmp_path / "root")


def test_truncated_and_streamless_media(tmp_path):
    frames = class_frames(2, 3.0, 10.0, 32, 24)
    whole = tmp_path / "whole.mp4"
    write_video(whole, frames, 10.0)
    data = whole.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) // 3])
    (tmp_path / "noise.mp4").write_bytes(b"\x00" * 2000)
    assert read_frames(whole, 16, 3).shape == (3, 16, 16, 3)
    from mmlesson.data.media import MediaError
    with pytest.raises(MediaError):
        read_frames(tmp_path / "noise.mp4", 16, 3)
    with pytest.raises(MediaError, match="has no audio stream"):
        read_audio_track(whole, 22050)
    with pytest.raises(MediaError):  # an mp4 cut before its index cannot be opened
        read_frames(tmp_path / "cut.mp4", 16, 3)


def test_kinetics_sounds_from_user_videos_lists_the_missing_ones(tmp_path):
    clips = ks_clips()
    raw = tmp_path / "videos"
    fabricate_videos(raw / "part1", clips[:4], seconds=4.0)
    fabricate_videos(raw / "part2" / "deeper", clips[4:], seconds=4.0, suffix=".flv")
    silent = clips[0][0]
    (raw / "part1" / f"{silent}.mp4").unlink()
    write_video(raw / "part1" / f"{silent}.mp4", class_frames(clips[0][1], 4.0, 10.0, 64, 48), 10.0)  # no audio
    root = tmp_path / "ks"
    summary = prepare(KS, raw, root, workers=1, frame_size=FRAME_SIZE, clip_seconds=4.0)
    assert summary["missing"] == 17396 - len(clips) and summary["rejected"] == 1
    assert read_csv(root / "rejected.csv") == [{"clip_id": silent, "reason": f"{silent}.mp4 has no audio stream"}]
    data = load("kinetics_sounds", root=root)
    assert data.num_classes == 31 and data.class_names[0] == "ks_00"
    assert len(data.train) + len(data.val) + len(data.test) == len(clips) - 1
    cache = data.train.cache
    index = [c["clip_id"] for c in cache.clips].index(clips[1][0])
    audio = read_audio_track(raw / "part1" / f"{clips[1][0]}.mp4", 22050)
    np.testing.assert_array_equal(cache.audio[index], fixed_length_spectrogram(audio, seconds=4.0).astype(np.float16))
    # 4 frames at 1 fps, 3 kept evenly spaced: seconds 0, 2, 3 (red = 40 s + 20)
    np.testing.assert_allclose(cache.frames[index, :, :, :, 0].mean(axis=(1, 2)), [20, 100, 140], atol=8)


def test_ave_clips_are_cut_to_their_annotated_event(tmp_path):
    rows = ave_rows()
    raw = fabricate_videos(tmp_path / "ave_videos", [(r["group"], r["label"]) for r in rows], seconds=10.0,
                           width=48, height=32, fps=5.0)
    root = tmp_path / "ave"
    prepare(AVE, raw, root, workers=2, frame_size=FRAME_SIZE, clip_seconds=2.0)
    data = load("ave", root=root)
    assert data.num_classes == 28 and {n: len(getattr(data, n)) for n in ("train", "val", "test")} == \
        {"train": 4, "val": 4, "test": 4}
    cache = data.train.cache
    for position, row in enumerate(cache.clips):
        start, end = int(row["start"]), int(row["end"])
        seconds = np.arange(start, end)
        kept = seconds[[int((j + 0.5) * len(seconds) / 3) for j in range(3)]] if len(seconds) > 3 else seconds
        assert cache.frame_count[position] == len(kept)
        red = cache.frames[position, :len(kept), :, :, 0].mean(axis=(1, 2))
        np.testing.assert_allclose(red, np.minimum(255, 40 * kept + 20), atol=8, err_msg=row["clip_id"])
        audio = read_audio_track(raw / f"{row['group']}.mp4", 22050, start, end)
        assert abs(audio.size - (end - start) * 22050) < 2048
    result = fit(data="ave", data_root=str(root), epochs=1, width=4, batch_size=4, probe=False,
                 data_knobs={"image_size": 16})
    assert np.isfinite(result.metrics["history"][0]["train"]["loss"])


def test_cli_prepare_then_train_end_to_end(cremad_cache, tmp_path):
    """The issue's acceptance path: `mmlesson data prepare cremad --raw RAW --root ROOT`, then
    `mmlesson train --data cremad --root ROOT ...`, as a user types them."""
    import subprocess
    import sys

    raw, _, _ = cremad_cache
    root, out = tmp_path / "cache", tmp_path / "run"
    prepared = subprocess.run([sys.executable, "-m", "mmlesson", "data", "prepare", "cremad", "--raw", str(raw),
                               "--root", str(root), "--frame-size", "16", "--workers", "2"],
                              capture_output=True, text=True, timeout=300)
    assert prepared.returncode == 0, prepared.stderr
    assert f"cremad: {CACHED} clips cached" in prepared.stdout and "4 rejected" in prepared.stdout
    trained = subprocess.run([sys.executable, "-m", "mmlesson", "train", "--data", "cremad", "--root", str(root),
                              "--epochs", "1", "--width", "4", "--batch-size", "8", "--no-probe", "--out", str(out),
                              "--data-knob", "split=speaker"], capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["data"] == "cremad" and metrics["data"]["knobs"]["split"] == "speaker"
    assert metrics["data"]["sizes"]["test"] >= 1
    bad = subprocess.run([sys.executable, "-m", "mmlesson", "train", "--data", "cremad", "--root", str(root),
                          "--data-knob", "train_size=10"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown cremad knob 'train_size'; valid knobs: split" in bad.stderr


@pytest.mark.parametrize("method", [["--method", "mla", "--inference", "fixed"],
                                    ["--method", "ccat", "--classifier-epochs", "1", "--beta", "0.45"]])
def test_mla_and_ccat_train_on_a_prepared_cremad_cache_from_the_command_line(cremad_cache, tmp_path, method):
    import subprocess
    import sys

    _, root, _ = cremad_cache
    out = tmp_path / "run"
    trained = subprocess.run([sys.executable, "-m", "mmlesson", "train", "--data", "cremad", "--root", str(root), *method,
                              "--epochs", "2", "--width", "4", "--batch-size", "8", "--no-probe", "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["method"] == method[1] and set(metrics["final"]["test"]["branch_acc"]) == {"audio", "visual"}
    assert all("contribution" in record["val"] for record in metrics["history"])
    if method[1] == "ccat":
        assert [record["stage"] for record in metrics["history"]] == ["classifier pre-training", "alternating"]


def test_a_build_killed_with_sigkill_resumes_to_the_same_cache(cremad_cache, tmp_path):
    """A real kill -9 in the middle of a build (right after the second group of clips is committed,
    with more clips written but not yet committed): no meta.json, and the next run finishes the cache
    with arrays identical to an uninterrupted build's."""
    import subprocess
    import sys

    raw, complete, _ = cremad_cache
    root = tmp_path / "killed"
    script = f"""
import os, signal
from mmlesson.data import cache, REAL_DATASETS
from mmlesson.data.prepare import prepare
commits = []
original = cache.CacheWriter.commit
def commit_then_die(self):
    original(self)
    commits.append(1)
    if len(commits) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
cache.CacheWriter.commit = commit_then_die
original_init = cache.CacheWriter.__init__
def small_groups(self, *args, **kwargs):
    original_init(self, *args, **{{**kwargs, "commit_every": 4}})
cache.CacheWriter.__init__ = small_groups
prepare(REAL_DATASETS["cremad"], {str(raw)!r}, {str(root)!r}, workers=1, frame_size={FRAME_SIZE})
"""
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert not (root / META_FILE).exists() and (root / BUILD_FILE).exists()
    status = np.load(root / "status.npy")
    assert (status == 1).sum() == 8  # two committed groups of four; the clips written after them are redone
    summary = prepare(CREMAD, raw, root, workers=2, frame_size=FRAME_SIZE)
    assert summary["processed"] == int((status == 0).sum())
    for name, file in ARRAY_FILES.items():
        np.testing.assert_array_equal(np.load(root / file), np.load(complete / file), err_msg=name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_split_is_resident_and_batches_equal_the_cpu_ones(cremad_cache):
    _, root, _ = cremad_cache
    data = load("cremad", root=root, num_frames=2, spec_mask=0.1)
    cuda = torch.device("cuda")
    for shuffle in (False, True):
        on_cpu = list(data.train.batches(4, shuffle=shuffle, generator=torch.Generator().manual_seed(0)))
        on_gpu = list(data.train.batches(4, shuffle=shuffle, generator=torch.Generator().manual_seed(0), device=cuda))
        for x, y in zip(on_cpu, on_gpu):
            assert y["visual"].device.type == "cuda"
            for key in x:
                torch.testing.assert_close(y[key].cpu(), x[key], atol=1e-4, rtol=0)
    assert str(cuda) in data.train.stored  # auto: resident on the device


def test_max_clips_keeps_a_few_clips_of_each_split_evenly_spaced_and_is_part_of_the_identity(cremad_cache):
    from mmlesson.data.real import evenly_spaced

    _, root, _ = cremad_cache
    whole, few = load("cremad", root=root), load("cremad", root=root, max_clips=2)
    assert all(len(split) <= 2 for split in (few.train, few.val, few.test)) and len(whole.train) > 2
    assert "max_clips" not in whole.identity["knobs"] and few.identity["knobs"]["max_clips"] == 2
    assert list(evenly_spaced([10, 11, 12, 13, 14, 15, 16], 3)) == [10, 13, 16]
    assert list(evenly_spaced([4, 5], 3)) == [4, 5]
