"""The Colab path: every chapter executed with papermill in SMOKE mode on a small prepared cache of a real data set
(fabricated CREMA-D media with the shipped split, and Kinetics-Sounds for one chapter), as a reader runs it with
``DATASET = "cremad"`` and ``DATA_DIR`` set. A chapter fails on an error output, on a SynthAV-only sentence among
its outputs (what the code printed or said: the static text is the book's), or on a finding left unformatted."""
import re

import nbformat
import pytest

from mmlesson.notebooks import execute_notebook

from .data_fixtures import prepare_book_caches
from .test_notebooks import CHAPTERS

# what only SynthAV has: its name, its regimes, its oracle, its speakers and per-seed data draws, and the
# stored SynthAV studies a chapter reads
SYNTHAV_ONLY = re.compile(r"SynthAV|severe regime|mild regime|regime B|oracle|speakers?\b|voices|knobs?\b|"
                          r"draws its own data set|stored (?:two-seed |side |)stud|tuning seed|not (?:been )?run",
                          re.IGNORECASE)
# an f-string's field left in the text ({name}, {x['y']:.3f}), not TeX's braces (\frac{a}{b}, W_{m}, e^{x})
UNFORMATTED = re.compile(r"(?<![\\_^}A-Za-z])\{[a-z_][\w.]*(?:\[[^\]]*\])*(?:![rsa])?(?::[^{}]*)?\}|\bnan\b|\bNone\b")


FENCED = re.compile(r"```.*?```", re.S)


def outputs_text(notebook) -> list[tuple[int, str]]:
    """``(cell index, text)`` of every output a reader sees: streams, Markdown and plain-text results, without
    the package's code shown in fenced blocks (``Chapter.show_code``) or the exercise checker's reply to the stub."""
    shown = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.output_type == "stream" and output.name == "stdout":
                text = output.text
            elif output.output_type in ("display_data", "execute_result"):
                data = output.get("data", {})
                text = data.get("text/markdown") or data.get("text/plain", "")
            else:
                continue
            text = "\n".join(line for line in FENCED.sub("", text).splitlines() if not line.startswith("Not yet:"))
            shown.append((index, text))
    return shown


def problems(notebook) -> list[str]:
    """What a real-data run must not show: errors, SynthAV-only sentences, unformatted findings."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.output_type == "error":
                found.append(f"cell {index}: {output.ename}: {output.evalue}")
    for index, text in outputs_text(notebook):
        for pattern, what in ((SYNTHAV_ONLY, "SynthAV-only"), (UNFORMATTED, "unformatted")):
            for match in pattern.finditer(text):
                found.append(f"cell {index}: {what}: ...{text[max(0, match.start() - 50):match.end() + 30]!r}...")
    return found


def test_the_checks_catch_what_they_are_for():
    """A SynthAV sentence placed in a real-data run's output, an error and an unformatted field are each found;
    TeX braces and ordinary prose are not."""
    def notebook(*texts):
        cell = nbformat.v4.new_code_cell("x")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in texts]
        return nbformat.v4.new_notebook(cells=[cell])

    assert problems(notebook("Each seed draws its own data set, so the interval covers the data as well."))
    assert problems(notebook("the visual branch is 0.21, against the oracle's 0.9"))
    assert problems(notebook("fused accuracy {mean['fused']:.3f}")) and problems(notebook("the gain is nan"))
    assert not problems(notebook("the fused model reaches 0.612 [0.55, 0.67] on 2 seeds; $\\frac{1}{B} W_{m}$"))
    failed = nbformat.v4.new_code_cell("x")
    failed.outputs = [nbformat.v4.new_output("error", ename="KeyError", evalue="'sum'", traceback=[])]
    assert problems(nbformat.v4.new_notebook(cells=[failed])) == ["cell 0: KeyError: 'sum'"]


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    return prepare_book_caches(tmp_path_factory.mktemp("real-data"))


RUNS = [*((chapter, "cremad") for chapter in CHAPTERS),
        *((chapter, "kinetics_sounds") for chapter in CHAPTERS if chapter.stem == "ch02_ogm_ge")]


@pytest.mark.slow
@pytest.mark.smoke
@pytest.mark.parametrize("chapter, dataset", RUNS, ids=lambda v: getattr(v, "stem", v))
def test_a_chapter_in_smoke_mode_on_a_real_data_cache(chapter, dataset, caches, tmp_path):
    parameters = {"DATASET": dataset, "DATA_DIR": str(caches[dataset]), "SMOKE": True, "DEVICE": "cpu"}
    output = execute_notebook(chapter, tmp_path / chapter.name, parameters=parameters)
    found = problems(nbformat.read(output, as_version=4))
    assert not found, f"{chapter.stem} on {dataset}:\n" + "\n".join(found[:15])
