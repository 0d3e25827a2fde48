"""Download files listed in a manifest (``path, size, sha256``): parallel, retried, resumed, verified.

Each file is fetched into ``<path>.part`` and renamed to its final name only after its size and
sha256 match the manifest, so a file under its final name is always complete and correct. An
interrupted transfer keeps its ``.part``; the next attempt (or the next run) asks the server for the
remaining bytes with an HTTP Range request and appends them (a server that ignores the range sends the
whole file again, which replaces the part). Transient failures (connection cut, timeout, HTTP 5xx or
429) are retried with exponential back-off; a 404 / 403 / 410 is final; a checksum mismatch discards the
bytes and tries once more from scratch before giving up. Used for CREMA-D's official media.
"""
from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from ..progress import make_progress, progress_enabled
from ..files import atomic_write, file_sha256

FAILED_FILE = "download_failed.csv"
FINAL_HTTP_ERRORS = (403, 404, 410)
CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the base URL and to the destination directory
    size: int
    sha256: str


def is_complete(path: Path, remote: RemoteFile) -> bool:
    return path.is_file() and path.stat().st_size == remote.size and file_sha256(path) == remote.sha256


class Downloader:
    """``Downloader(base_url, dest).fetch_all(files)`` -> ``{path: reason}`` of the files that failed."""

    def __init__(self, base_url: str, dest, connections: int = 8, retries: int = 4, timeout: float = 60.0,
                 backoff: float = 1.0, progress: str = "auto"):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.dest, self.connections, self.retries = Path(dest), connections, retries
        self.timeout, self.backoff, self.progress = timeout, backoff, progress
        self.lock = threading.Lock()
        self.bar = None

    def fetch_all(self, files: list[RemoteFile]) -> dict[str, str]:
        todo = [f for f in files if not is_complete(self.dest / f.path, f)]
        failures = {}
        self.bar = make_progress(sum(f.size for f in todo), "downloading", progress_enabled(self.progress))
        with self.bar, ThreadPoolExecutor(max(1, self.connections)) as pool:
            for remote, reason in zip(todo, pool.map(self.fetch, todo)):
                if reason is not None:
                    failures[remote.path] = reason
        lines = "path,reason\n" + "".join(f"{p},{r}\n" for p, r in sorted(failures.items()))
        if failures or (self.dest / FAILED_FILE).exists():
            atomic_write(self.dest / FAILED_FILE, lambda handle: handle.write(lines.encode()))
        return failures

    def fetch(self, remote: RemoteFile) -> str | None:
        """Fetch one file; None when it is in place and verified, else the reason it is not."""
        final = self.dest / remote.path
        part = final.with_name(final.name + ".part")
        final.parent.mkdir(parents=True, exist_ok=True)
        reason, mismatches = "not attempted", 0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                self.transfer(remote, part)
            except urllib.error.HTTPError as error:
                reason = f"HTTP {error.code}"
                if error.code in FINAL_HTTP_ERRORS:
                    return reason
                if error.code == 416:  # our part is longer than the file: start again
                    part.unlink(missing_ok=True)
                continue
            except (urllib.error.URLError, HTTPException, OSError) as error:
                reason = f"transfer failed ({type(error).__name__}: {error})"
                continue
            if part.stat().st_size < remote.size:
                reason = f"transfer ended at {part.stat().st_size} of {remote.size} bytes"
                continue
            if part.stat().st_size == remote.size and file_sha256(part) == remote.sha256:
                os.replace(part, final)
                return None
            part.unlink()
            reason = "sha256 does not match the manifest"
            mismatches += 1
            if mismatches == 2:
                return reason
        return reason

    def transfer(self, remote: RemoteFile, part: Path) -> None:
        """Append what the server sends to ``part``, asking for the bytes after those already there."""
        have = part.stat().st_size if part.exists() else 0
        if have > remote.size:
            part.unlink()
            have = 0
        if have == remote.size:
            return
        request = urllib.request.Request(self.base_url + urllib.parse.quote(remote.path))
        if have:
            request.add_header("Range", f"bytes={have}-")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            resumed = have and response.status == 206
            with open(part, "ab" if resumed else "wb") as handle:
                if have and not resumed:
                    self.advance(-have)  # the server ignored the range: those bytes come again
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    self.advance(len(block))

    def advance(self, count: int) -> None:
        if self.bar is not None:
            with self.lock:
                self.bar.update(count)
