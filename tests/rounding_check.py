"""Do the book's checked numbers and verdicts survive another float reduction order?

    .venv/bin/python -m tests.rounding_check --threads 2            # every chapter, about 25 min here
    .venv/bin/python -m tests.rounding_check --threads 2 book/ch05_decision_layer.ipynb

Executes each chapter on its defaults (papermill) with ``MMLESSON_THREADS`` torch threads per run, one
run at a time (two multi-threaded runs side by side would fight for the cores), into a fresh run
store, and compares every cell tagged ``nbval-check-numbers`` with the stored notebook by the rules
of ``tests/nbval_tolerance.py``: numbers within the printed tolerance, and the same verdict word
wherever both executions call it firm (stable, or clear where no re-execution spread was measured). Two threads sum in another order than one, a stand-in for
another CPU. Prints a line per chapter and every disagreement; exits 1 if there is one. The runs
train in papermill's kernel: nbval (``pytest book/``) waits at most 5 s for a cell's output after a
long in-kernel cell and gives up, which is why this is not ``MMLESSON_WORKERS=1 pytest book/``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from tests.nbval_tolerance import FIRM, TAG, VERDICT, line_matches, lines_match, stated_tolerance

BOOK = Path(__file__).resolve().parent.parent / "book"


def checked_texts(path) -> list[tuple[int, str]]:
    """(cell index, its stdout) for every cell tagged ``nbval-check-numbers``."""
    notebook = nbformat.read(path, as_version=4)
    texts = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and TAG in cell.metadata.get("tags", []):
            texts.append((index, "".join(o.get("text", "") for o in cell.get("outputs", [])
                                         if o.get("output_type") == "stream" and o.get("name") == "stdout")))
    return texts


def compare(reference, executed) -> tuple[int, int, list[str]]:
    """(checked cells, verdict lines clear in both, disagreements) between two executions."""
    cells, clear, problems = 0, 0, []
    for (index, old), (_, new) in zip(checked_texts(reference), checked_texts(executed), strict=True):
        cells += 1
        for old_line, new_line in zip(old.splitlines(), new.splitlines()):
            old_verdict, new_verdict = VERDICT.match(old_line), VERDICT.match(new_line)
            if old_verdict and new_verdict and old_verdict.group(2) == new_verdict.group(2) and old_verdict.group(2) in FIRM:
                clear += 1
        if not lines_match(old, new):
            tolerance = stated_tolerance(old)
            different = [f"    stored:   {a}\n    executed: {b}" for a, b in zip(old.splitlines(), new.splitlines())
                         if not line_matches(a, b, tolerance)]
            problems.append(f"  cell {index}:\n" + "\n".join(different or ["    (different number of lines)"]))
    return cells, clear, problems


def moved_verdicts(reference, executed) -> dict[str, list[int]]:
    """Per label of the stored verdict (stable, fragile, clear, near its boundary): ``[kept, moved]``, how many
    verdicts of the checked cells the execution printed with the same word and how many with another."""
    counts: dict[str, list[int]] = {}
    for (_, old), (_, new) in zip(checked_texts(reference), checked_texts(executed), strict=True):
        for old_line, new_line in zip(old.splitlines(), new.splitlines()):
            old_verdict, new_verdict = VERDICT.match(old_line), VERDICT.match(new_line)
            if old_verdict and new_verdict:
                counts.setdefault(old_verdict.group(2), [0, 0])[old_verdict.group(1) != new_verdict.group(1)] += 1
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.rounding_check", description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="default: every chapter in book/")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run (default: %(default)s)")
    parser.add_argument("--store", help="run store (default: a fresh temporary one)")
    parser.add_argument("--keep", help="directory for the executed notebooks (default: a temporary one)")
    args = parser.parse_args(argv)
    from mmlesson.notebooks import execute_notebook

    chapters = args.chapters or sorted(BOOK.glob("ch*.ipynb"))
    os.environ.update(MMLESSON_THREADS=str(args.threads), MMLESSON_WORKERS="1",
                      MMLESSON_RESULTS=args.store or tempfile.mkdtemp(prefix="rounding-store-"))
    out = Path(args.keep or tempfile.mkdtemp(prefix="rounding-notebooks-"))
    failed = False
    for chapter in chapters:
        started = time.perf_counter()
        executed = execute_notebook(chapter, out / chapter.name)
        cells, clear, problems = compare(chapter, executed)
        failed |= bool(problems)
        print(f"{chapter.name}: {cells} checked cells, {clear} verdicts firm (stable or clear) in both executions, "
              f"{len(problems)} cells differ ({time.perf_counter() - started:.0f} s, {args.threads} threads)")
        moved = moved_verdicts(chapter, executed)
        print("  stored verdicts by label, kept / moved: " + (", ".join(
            f"{label} {kept} / {changed}" for label, (kept, changed) in sorted(moved.items())) or "none"))
        for problem in problems:
            print(problem)
    print(f"executed notebooks in {out}; run store {os.environ['MMLESSON_RESULTS']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
