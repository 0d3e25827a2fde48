"""What a run tells its user while it works: a bar in a terminal or an interactive notebook, one
line per epoch where output goes to a pipe or a log, nothing in batch runs and CI.

``progress="auto"`` picks one of the three; ``"on"`` shows progress even in batch runs (a bar in a
terminal, lines elsewhere); ``"off"`` shows nothing. Messages that matter whatever the setting
(a warning about the data) are printed with ``warn``.
"""
from __future__ import annotations

import os
import sys

from tqdm import tqdm as terminal_tqdm
from tqdm.auto import tqdm as notebook_tqdm  # the widget bar in a notebook kernel, else the terminal one


def interactive() -> bool:
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress_mode(setting: str) -> str:
    """``bar``, ``lines`` or ``off`` for a ``progress`` setting (auto, on, off)."""
    if setting == "off":
        return "off"
    if setting == "auto" and (os.environ.get("CI") or os.environ.get("MMLESSON_BATCH")):
        return "off"
    return "bar" if interactive() else "lines"


def progress_enabled(setting: str) -> bool:
    """Whether a progress bar is shown for ``setting`` (see ``progress_mode``)."""
    return progress_mode(setting) == "bar"


def make_progress(total: int, description: str, enabled: bool, leave: bool = False):
    tqdm = notebook_tqdm if "ipykernel" in sys.modules else terminal_tqdm
    return tqdm(total=total, desc=description, disable=not enabled, leave=leave, dynamic_ncols=True)


def warn(message: str) -> None:
    print(f"mmlesson: warning: {message}", file=sys.stderr, flush=True)


class RunProgress:
    """The progress of one training run: ``note`` (resumed, read back, probes), ``step`` (one batch),
    ``end_epoch`` (the epoch counter with its validation accuracy)."""

    def __init__(self, label: str, epochs: int, start_epoch: int, steps_per_epoch: int, setting: str):
        self.label, self.epochs, self.mode = label, epochs, progress_mode(setting)
        self.bar = None
        if self.mode == "bar":
            self.bar = make_progress((epochs - start_epoch) * steps_per_epoch, self.description(start_epoch), True,
                                     leave=True)

    def description(self, epoch: int) -> str:
        return f"{self.label} epoch {min(epoch + 1, self.epochs)}/{self.epochs}"

    def note(self, text: str) -> None:
        if self.mode == "bar":
            self.bar.write(f"{self.label}: {text}", file=sys.stderr)
        elif self.mode == "lines":
            print(f"{self.label}: {text}", file=sys.stderr, flush=True)

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def end_epoch(self, epoch: int, val_acc: float, seconds: float) -> None:
        if self.mode == "bar":
            self.bar.set_description(self.description(epoch + 1))
            self.bar.set_postfix(val_acc=f"{val_acc:.3f}")
        elif self.mode == "lines":
            print(f"{self.label}: epoch {epoch + 1}/{self.epochs}  val acc {val_acc:.3f}  {seconds:.1f} s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
