"""The argparse value types the commands share: ``NAME=VALUE`` pairs, counts, seconds, ``[NAME=]PATH``."""
from __future__ import annotations

import argparse
import ast


def parse_knob(text: str) -> tuple[str, object]:
    """``name=value`` -> (name, Python literal or string): ``1.5``, ``3``, ``1,0.5,2`` (a tuple), ``audio``."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name.strip(), value


def integer_at_least(minimum: int):
    """An argparse ``type``: an integer >= ``minimum`` (1: positive, 0: non-negative), named in its errors."""
    kind = "a positive integer" if minimum == 1 else "a non-negative integer"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {kind}, got {value}")
        return value

    return parse


positive_int, non_negative_int = integer_at_least(1), integer_at_least(0)


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def parse_root(text: str) -> tuple[str | None, str]:
    """``PATH`` (every real data set of the grid) or ``NAME=PATH``."""
    name, separator, path = text.partition("=")
    return (name, path) if separator else (None, text)
