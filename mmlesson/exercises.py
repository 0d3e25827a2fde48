"""Checks for the chapters' code exercises: the reader's function against a reference on a few cases.

A chapter's code exercise is a cell with a function for the reader to write, followed by a hidden cell
that calls ``check(answer, reference, cases)``. The check prints one line, never a traceback: the
answer is right on every case, or the first case where it is not, or that the cell is not written yet.
"""
from __future__ import annotations

import numpy as np


def _as_array(value) -> np.ndarray:
    """A number, a sequence, a numpy array or a torch tensor, as a float64 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _describe(arguments: tuple) -> str:
    arrays = [_as_array(argument) for argument in arguments]
    return ", ".join(f"an array of shape {array.shape}" if array.ndim else f"{array.item():g}" for array in arrays)


def check(answer, reference, cases: list[tuple], tolerance: float = 1e-6) -> bool:
    """Compare ``answer(*case)`` with ``reference(*case)`` for every case (equal shapes, every entry
    within ``tolerance``, absolute or relative); print one line saying what was found, return whether
    the answer is right."""
    name = getattr(answer, "__name__", "your function")
    for number, case in enumerate(cases, start=1):
        try:
            got = answer(*case)
        except Exception as error:  # the reader's code: any failure is reported in one line
            print(f"Not yet: {name}({_describe(case)}) raised {type(error).__name__}: {error}")
            return False
        if got is None:
            print(f"Not yet: {name} returns None; write it in the cell above, run that cell, then this one.")
            return False
        expected = _as_array(reference(*case))
        try:
            value = _as_array(got)
        except (TypeError, ValueError):
            print(f"Not yet: {name} returned a {type(got).__name__}, not a number or an array")
            return False
        if value.shape != expected.shape:
            print(f"Not yet: for case {number} ({_describe(case)}) {name} returns shape {value.shape}, "
                  f"expected {expected.shape}")
            return False
        if not np.allclose(value, expected, rtol=tolerance, atol=tolerance):
            worst = np.unravel_index(np.argmax(np.abs(value - expected)), expected.shape) if expected.ndim else ()
            print(f"Not yet: for case {number} ({_describe(case)}) {name} gives {value[worst]:.6g} where "
                  f"{expected[worst]:.6g} is expected" + (f" (entry {tuple(map(int, worst))})" if worst else ""))
            return False
    print(f"Correct: {name} agrees with the package on all {len(cases)} cases.")
    return True
