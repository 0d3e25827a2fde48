"""Progress bars: on in a terminal or an interactive notebook, off in CI, batch runs and pipes."""
from __future__ import annotations

import os
import sys


def progress_enabled(setting: str) -> bool:
    """``auto``: on in a terminal or an interactive notebook; off in CI, batch runs and pipes."""
    if setting != "auto":
        return setting == "on"
    if os.environ.get("CI") or os.environ.get("MMLESSON_BATCH"):
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def make_progress(total: int, description: str, enabled: bool):
    if "ipykernel" in sys.modules:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=description, disable=not enabled, leave=False, dynamic_ncols=True)
