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


def test_the_rounding_check_counts_clear_verdicts_and_names_the_differing_lines(tmp_path):
    import nbformat

    from .rounding_check import compare

    def notebook(text, name):
        cell = nbformat.v4.new_code_cell("claims(comparisons)", metadata={"tags": ["nbval-check-output",
                                                                                     "nbval-check-numbers"]})
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        path = tmp_path / name
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), cell]), path)
        return path

    stored = notebook(STORED, "stored.ipynb")
    assert compare(stored, notebook(STORED.replace("0.775", "0.790"), "close.ipynb")) == (1, 1, [])
    cells, clear, problems = compare(stored, notebook(STORED.replace("better (clear)", "worse (clear)"), "flip.ipynb"))
    assert (cells, clear) == (1, 1) and len(problems) == 1
    assert "cell 1" in problems[0] and "worse (clear)" in problems[0] and "0.775" not in problems[0]


def test_the_rounding_check_counts_moved_verdicts_by_their_stored_label(tmp_path):
    import nbformat

    from .rounding_check import moved_verdicts

    def notebook(text, name):
        cell = nbformat.v4.new_code_cell("claims(c)", metadata={"tags": ["nbval-check-numbers"]})
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / name)
        return tmp_path / name

    stored = "verdict: better (stable) | a\nverdict: better (fragile) | b\nverdict: worse (stable) | c\n"
    executed = "verdict: better (stable) | a\nverdict: undetermined (fragile) | b\nverdict: undetermined (fragile) | c\n"
    assert moved_verdicts(notebook(stored, "s.ipynb"), notebook(executed, "e.ipynb")) == {"stable": [1, 1],
                                                                                          "fragile": [0, 1]}
    assert lines_match(stored, executed)  # a stable verdict that turned fragile is not a firm disagreement
    assert not lines_match(stored, stored.replace("worse (stable)", "better (stable)"))
