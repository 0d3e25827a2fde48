"""The tolerant comparison of checked chapter cells (tests/nbval_tolerance.py)."""
from .nbval_tolerance import lines_match, merge_streams

STORED = """numbers checked to within ±0.03
joint test accuracy 0.775 (10 seeds)
verdict: better (clear) | OGM-GE vs joint, +0.031
verdict: undetermined (near its boundary) | ARL vs joint, +0.004"""


def test_numbers_within_the_stated_tolerance_match():
    assert lines_match(STORED, STORED.replace("0.775", "0.790").replace("+0.031", "+0.021"))
    assert not lines_match(STORED, STORED.replace("0.775", "0.810"))  # 0.035 away
    assert not lines_match(STORED, STORED.replace("(10 seeds)", "(10 runs)"))  # the words must be equal
    assert not lines_match(STORED, STORED + "\nan extra line")


def test_verdict_words_are_compared_only_where_both_are_clear():
    assert not lines_match(STORED, STORED.replace("better (clear)", "worse (clear)"))
    assert lines_match(STORED, STORED.replace("better (clear)", "undetermined (near its boundary)"))
    assert lines_match(STORED, STORED.replace("undetermined (near its boundary)", "better (clear)"))
    assert not lines_match(STORED, STORED.replace("| ARL vs joint", "| ARL vs OGM-GE"))  # the claim must be the same


def test_without_a_stated_tolerance_numbers_must_be_equal():
    assert lines_match("accuracy 0.5", "accuracy 0.5")
    assert not lines_match("accuracy 0.5", "accuracy 0.501")


def test_stream_chunks_are_merged():
    chunks = [{"output_type": "stream", "name": "stdout", "text": "a\n"},
              {"output_type": "stream", "name": "stdout", "text": "b\n"},
              {"output_type": "stream", "name": "stderr", "text": "c\n"}]
    merged = merge_streams(chunks)
    assert [o["text"] for o in merged] == ["a\nb\n", "c\n"]
