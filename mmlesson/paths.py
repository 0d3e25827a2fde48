"""Where a command will write, checked before it writes anything; settings read from the environment.

``check_directory_target(path, option)`` refuses a directory that cannot be made (a file in the way,
a name the file system will not take, no permission) with one line naming the option, and creates
nothing; ``made_for_this_command(path)`` creates it and removes what it created again if the command
fails before putting anything there, so a refused command leaves no empty directories behind.
``env_int(name)`` reads an integer setting such as ``MMLESSON_WORKERS`` or refuses it in one line.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import ConfigError
from .files import locked_by_another


def exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system: nothing by that name can exist
        return False


def missing_directories(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first (``a/../b`` is ``b``)."""
    path = Path(os.path.abspath(path))
    return [p for p in (path, *path.parents) if not exists(p)]


def check_directory_target(path, option: str) -> None:
    """Refuse ``path`` as the directory given by ``option`` (``--out``, ``--results``) if it is empty,
    a file, has too long a name, or cannot be created; nothing is created. An existing directory may
    be read-only (a finished run is read back from it): ``check_writable_directory`` checks that."""
    text = os.fspath(path)
    if not text.strip():
        raise ConfigError(f"{option} is empty (an unset shell variable?); give a directory")
    path = Path(text)
    if exists(path):
        if not path.is_dir():
            raise ConfigError(f"{option} {path} is a file; give a directory")
        return
    missing = missing_directories(path)
    existing = missing[-1].parent
    if not existing.is_dir():
        raise ConfigError(f"{option} {path} cannot be created ({existing} is a file); give a writable directory")
    limit = os.pathconf(existing, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    for part in missing:
        if len(os.fsencode(part.name)) > limit:
            raise ConfigError(f"{option}: the name {part.name[:40]}... has {len(part.name)} characters, more than "
                              f"this file system's {limit}; give a shorter name")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path} cannot be created (no permission to write in {existing}); give a "
                          f"writable directory")


def check_writable_directory(path, option: str) -> None:
    """Refuse the existing directory ``path`` given by ``option`` if this process cannot write in it."""
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path} is not writable; give a writable directory")


def write_refusal(directory) -> str | None:
    """Why no file can be written in the existing ``directory`` (the OSError's reason), or None. An empty
    temporary file is written and removed at once, so that what a permission check cannot foresee (a read-only
    mount, root's access()) is caught too."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".mmlesson-write-check-"):
            return None
    except OSError as error:
        return error.strerror or str(error)


def make_directory(path, option: str) -> Path:
    """Create the directory ``path`` given by ``option`` (checked first), or refuse it in one line."""
    check_directory_target(path, option)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as error:  # what no permission check can foresee (/sys, a read-only mount, root's access())
        raise ConfigError(f"{option} {path} cannot be created ({error.strerror}); give a writable directory") from error
    return Path(path)


@contextlib.contextmanager
def made_for_this_command(path: Path | None, option: str):
    """Create the directory ``path`` given by ``option`` (and its missing parents) for the body; if the
    body raises, remove those of them that are still empty, so a refused or failed command leaves
    nothing it made behind."""
    if path is None:
        yield
        return
    made = missing_directories(path)
    make_directory(path, option)
    try:
        yield
    except BaseException:
        for directory in made:  # deepest first; stop at the first that now holds something or is in use
            try:
                if locked_by_another(directory):
                    break
                directory.rmdir()
            except OSError:
                break
        raise


def env_int(name: str, minimum: int = 0) -> int | None:
    """The integer environment setting ``name`` (None when unset or empty), or a one-line error."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        kind = "a positive integer" if minimum >= 1 else f"an integer >= {minimum}"
        raise ConfigError(f"${name} must be {kind}, got {text!r}; unset it or give e.g. {name}={max(minimum, 1)}")
    return value
