"""Chapters: a papermill smoke run of each with SMOKE=True, the parameters convention, the jupytext
pair in sync, and the book build with zero warnings. (nbval re-executes every chapter on its
defaults and compares the cells tagged nbval-check-output: `pytest` collects book/*.ipynb.)"""
from pathlib import Path

import nbformat
import pytest

from mmlesson.notebooks import execute_notebook

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("ch*.ipynb"))
REQUIRED_PARAMETERS = ("DATASET", "DATA_DIR", "SEEDS", "DEVICE", "RESULTS_DIR", "SMOKE")  # epochs: the recipe


def test_there_are_chapters():
    assert CHAPTERS, "no chapters found in book/"


@pytest.mark.slow
@pytest.mark.smoke
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_in_smoke_mode(chapter, tmp_path):
    output = execute_notebook(chapter, tmp_path / chapter.name, parameters={"SMOKE": True})
    notebook = nbformat.read(output, as_version=4)
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert notebook.metadata["papermill"]["parameters"] == {"SMOKE": True}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_conventions(chapter):
    notebook = nbformat.read(chapter, as_version=4)
    assert notebook.cells[0].cell_type == "markdown" and "colab" in notebook.cells[0].source.lower()
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    for name in REQUIRED_PARAMETERS:
        assert f"\n{name} = " in "\n" + parameters[0].source, name
    checked = [c for c in notebook.cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked and all(c.outputs for c in checked), "checked cells must have stored outputs"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "the stored notebook must be fully executed"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_metadata_lets_plain_papermill_run_it(chapter):
    """`papermill book/<chapter>.ipynb out.ipynb -p ...` needs the kernel named in the notebook."""
    metadata = nbformat.read(chapter, as_version=4).metadata
    assert metadata["kernelspec"]["name"] == "python3" and metadata["kernelspec"]["language"] == "python"
    assert metadata["language_info"]["name"] == "python"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_jupytext_pair_is_in_sync(chapter):
    jupytext = pytest.importorskip("jupytext")
    pair = chapter.with_suffix(".py")
    assert pair.exists(), f"{pair.name} missing: run `jupytext --sync {chapter}`"
    from_notebook = [c.source for c in nbformat.read(chapter, as_version=4).cells]
    from_pair = [c.source for c in jupytext.read(pair).cells]
    assert from_notebook == from_pair, f"{pair.name} and {chapter.name} differ: run `jupytext --sync {chapter}`"


@pytest.mark.slow
def test_book_builds_without_warnings(built_book):
    """``conftest.built_book`` fails on any warning (-W); every chapter's page is there."""
    for chapter in CHAPTERS:
        assert (built_book / "_build" / "html" / "book" / f"{chapter.stem}.html").exists()


def test_a_failing_chapter_is_one_line_and_leaves_no_output_a_build_reads(tmp_path, capsys):
    from mmlesson.notebooks import main

    source = tmp_path / "chapter.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                               nbformat.v4.new_code_cell("raise ValueError('no such regime')")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, source)
    assert main(["execute", str(source), "--output", str(tmp_path / "out.ipynb")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chapter.ipynb failed in cell 2 (ValueError: no such regime)" in err
    assert not (tmp_path / "out.ipynb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.failed.ipynb", "chapter.ipynb"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_verdicts_and_checked_numbers_go_through_the_tolerance_rules(chapter):
    """A cell that prints verdict lines or checked numbers must be compared (nbval-check-output, under
    --nbval-lax) and compared by tests/nbval_tolerance.py's rules (nbval-check-numbers), not exactly."""
    notebook = nbformat.read(chapter, as_version=4)
    for cell in notebook.cells:
        text = "".join(o.get("text", "") for o in cell.get("outputs", []))
        tags = set(cell.metadata.get("tags", []))
        if "verdict: " in text or "numbers checked to within" in text or "nbval-check-numbers" in tags:
            assert {"nbval-check-output", "nbval-check-numbers"} <= tags, cell.source[:80]


def code_cells(chapter):
    return [c for c in nbformat.read(chapter, as_version=4).cells if c.cell_type == "code"]


def test_every_chapter_has_the_same_setup_cell_of_at_most_ten_lines():
    """The chapter object owns the setting (mmlesson.chapter): the setup cell is the same few lines everywhere,
    only the paper's name differs."""
    import re

    setups = []
    for chapter in CHAPTERS:
        cells = [c.source for c in code_cells(chapter) if "Chapter.setup(" in c.source]
        assert len(cells) == 1, chapter.name
        assert len(cells[0].splitlines()) <= 10, f"{chapter.name}: the setup cell has {len(cells[0].splitlines())} lines"
        setups.append(re.sub(r'Chapter\.setup\("\w+"', 'Chapter.setup("PAPER"', re.sub(r", smoke_epochs=\d+", "", cells[0])))
    assert len(set(setups)) == 1, "the chapters' setup cells differ"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_harness_stays_out_of_the_readers_view(chapter):
    """Tolerance lines and verdict tags are for nbval: the cells that print them are removed from the page,
    and no shown output carries them."""
    for cell in code_cells(chapter):
        tags = set(cell.metadata.get("tags", []))
        text = "".join(o.get("text", "") for o in cell.get("outputs", []))
        if "nbval-check-numbers" in tags:
            assert "remove-cell" in tags, cell.source[:80]
        elif "remove-cell" not in tags and "remove-output" not in tags:
            for marker in ("numbers checked to within", "verdict: ", "(clear)", "near its boundary"):
                assert marker not in text, f"{chapter.name}: shown output carries {marker!r}: {cell.source[:60]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_closes_with_its_findings_and_exercises(chapter):
    cells = nbformat.read(chapter, as_version=4).cells
    headings = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## What we found")]
    assert len(headings) == 1, chapter.name
    findings = cells[headings[0] + 1]
    assert findings.cell_type == "code" and "remove-input" in findings.metadata.get("tags", [])
    shown = [o for o in findings.outputs if "text/markdown" in o.get("data", {})]
    assert shown and "1. **" in shown[0]["data"]["text/markdown"], "the findings are a numbered list formatted by code"
    exercises = [c for c in cells[headings[0]:] if c.cell_type == "markdown" and "**Code it:" in c.source]
    assert exercises and "Exercises" in "".join(c.source for c in cells[headings[0]:] if c.cell_type == "markdown")
    checks = [c for c in cells if c.cell_type == "code" and "hide-input" in c.metadata.get("tags", [])
              and "check(" in c.source]
    assert len(checks) == 1, f"{chapter.name}: one code exercise with a hidden check"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_treats_its_plumbing_alike_on_the_page(chapter):
    """The parameters cell is shown (it is what a reader edits), the Colab install cell is not on the page, a
    code cell of 20 lines or more is collapsed (its output stays), and the exercise checker shows no output."""
    for cell in code_cells(chapter):
        tags = set(cell.metadata.get("tags", []))
        if "parameters" in tags:
            assert not tags & {"remove-cell", "remove-input", "hide-input"}, chapter.name
        elif '"google.colab" in sys.modules' in cell.source:
            assert "remove-cell" in tags, f"{chapter.name}: the install cell is on the page"
        elif cell.source.startswith("check(") or "\ncheck(" in cell.source:
            assert {"hide-input", "remove-output"} <= tags, f"{chapter.name}: the checker's output is on the page"
        elif len(cell.source.splitlines()) >= 20:
            assert tags & {"hide-input", "remove-cell", "remove-input"}, f"{chapter.name}: {cell.source[:60]!r}"
