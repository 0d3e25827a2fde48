"""nbval, comparing numbers within a stated tolerance (a pytest plugin: ``-p tests.nbval_tolerance``).

A chapter's training runs are chaotic: another CPU type or another float reduction order changes
every accuracy in its second or third decimal, and a verdict drawn near its decision boundary can
change with it. nbval compares outputs exactly, so cells tagged ``nbval-check-numbers`` (besides
``nbval-check-output``) are compared here first, line by line:

* the text without its numbers must be equal;
* every number must lie within the tolerance the cell's output states (``to within ±0.03`` on any
  line; 0 if it states none);
* a line ``verdict: <word> (<label>) | <claim>`` (``stats.verdict_lines``) must name the same claim, and
  the same word where *both* executions call the verdict firm: ``stable`` (a re-execution is predicted to
  keep it, from the measured re-execution spread) or, where that spread was not measured, ``clear`` (far
  from its decision boundary). A verdict labelled ``fragile`` or ``near its boundary`` in either is not a
  finding the suite can hold the code to.

When a cell passes these rules its stored text replaces the new one, so nbval's exact comparison passes;
otherwise nbval reports the difference as usual.

nbval's cells are marked ``slow`` (they execute the chapters), so ``pytest -m "not slow"`` is the unit
tests alone and ``pytest -m slow`` the chapters (``make test`` runs the two phases one after the other).
"""
from __future__ import annotations

import re

import nbval.plugin

NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
TOLERANCE = re.compile(r"to within ±\s*(\d+(?:\.\d+)?)")
VERDICT = re.compile(r"^verdict: (\w+) \((clear|near its boundary|stable|fragile)\) \| (.*)$")
FIRM = ("clear", "stable")  # the labels of a verdict the suite holds the code to
TAG = "nbval-check-numbers"


def numbers_match(reference: str, test: str, tolerance: float) -> bool:
    if NUMBER.sub("#", reference) != NUMBER.sub("#", test):
        return False
    pairs = zip(NUMBER.findall(reference), NUMBER.findall(test))
    return all(abs(float(a) - float(b)) <= tolerance + 1e-12 for a, b in pairs)


def stated_tolerance(text: str) -> float:
    """The tolerance a cell's output states (``to within ±0.03``), 0 if none."""
    found = TOLERANCE.search(text)
    return float(found.group(1)) if found else 0.0


def line_matches(reference: str, test: str, tolerance: float) -> bool:
    """One line of a checked cell against its stored line, by the rules of the module docstring."""
    ref_verdict, new_verdict = VERDICT.match(reference), VERDICT.match(test)
    if ref_verdict or new_verdict:
        if not (ref_verdict and new_verdict) or not numbers_match(ref_verdict.group(3), new_verdict.group(3),
                                                                  tolerance):
            return False
        both_firm = ref_verdict.group(2) == new_verdict.group(2) and ref_verdict.group(2) in FIRM
        return not both_firm or ref_verdict.group(1) == new_verdict.group(1)
    return numbers_match(reference, test, tolerance)


def lines_match(reference: str, test: str) -> bool:
    """The rules of the module docstring, for one text output."""
    tolerance = stated_tolerance(reference)
    reference_lines, test_lines = reference.splitlines(), test.splitlines()
    return len(reference_lines) == len(test_lines) and all(
        line_matches(ref, new, tolerance) for ref, new in zip(reference_lines, test_lines))


_compare_outputs = nbval.plugin.IPyNbCell.compare_outputs


def merge_streams(outputs: list) -> list:
    """Consecutive chunks of one stream as one output (the kernel may split a cell's prints anyhow)."""
    merged = []
    for output in outputs:
        if (output.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1]["name"] == output["name"]):
            merged[-1] = {**merged[-1], "text": merged[-1]["text"] + output["text"]}
        else:
            merged.append(output)
    return [nbval.plugin.nbformat.from_dict(output) for output in merged]


def compare_outputs(self, test, ref, skip_compare=None):
    if TAG in self.cell.metadata.get("tags", []):
        test, ref = merge_streams(test), merge_streams(ref)
        for new, old in zip(test, ref):
            if new.get("output_type") == "stream" == old.get("output_type") and new.get("name") == old.get("name"):
                if lines_match(old["text"], new["text"]):
                    new["text"] = old["text"]
    return _compare_outputs(self, test, ref, skip_compare)


nbval.plugin.IPyNbCell.compare_outputs = compare_outputs


def pytest_collection_modifyitems(items):
    for item in items:
        if isinstance(item, nbval.plugin.IPyNbCell):
            item.add_marker("slow")
