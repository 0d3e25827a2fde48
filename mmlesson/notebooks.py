"""Execute chapters with papermill: ``python -m mmlesson.notebooks execute book/ch01_*.ipynb``.

A chapter is executed into a temporary file beside it and renamed over the target only once the
execution has finished without error, so an interrupted or failed run never leaves a half-executed
notebook behind. ``make book`` executes every chapter in place on its defaults; the tests execute
them with ``SMOKE=True`` into a temporary directory.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .errors import MMLessonError, exit_with_one_line
from .files import current_umask


def tidy_notebook(path) -> None:
    """Drop what an execution adds but the chapter does not need: saved ipywidgets state (widgets
    need a live kernel anyway, and their state would carry every figure they drew) and papermill's
    per-cell timing metadata (which would churn the jupytext pair on every run), and local paths."""
    import nbformat  # the `book` extra: only executing chapters needs it

    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("widgets", None)
    # the kernel plain `papermill` needs, whatever the editor that last saved the chapter wrote
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata.setdefault("language_info", {"name": "python"})
    for local_path in ("input_path", "output_path"):  # this machine's paths, meaningless elsewhere
        notebook.metadata.get("papermill", {}).pop(local_path, None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)


class ChapterFailed(MMLessonError):
    """A chapter raised an error while executing."""


def execute_notebook(source, output=None, parameters: dict | None = None, timeout: int = 1800) -> Path:
    """Run ``source`` with papermill (``parameters`` injected) and write the result to ``output``
    (default: ``source`` itself), atomically. Returns the output path."""
    import papermill  # the `book` extra: only executing chapters needs it

    source = Path(source).resolve()
    output = Path(output).resolve() if output is not None else source
    output.parent.mkdir(parents=True, exist_ok=True)
    # a hidden name that the book build excludes (_config.yml), so a killed execution breaks no later build
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=".ipynb")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())
    os.environ.setdefault("MMLESSON_BATCH", "1")
    try:
        papermill.execute_notebook(str(source), tmp, parameters=parameters or {}, cwd=str(source.parent),
                                   kernel_name="python3", progress_bar=False, execution_timeout=timeout)
        tidy_notebook(tmp)
        os.replace(tmp, output)
    except papermill.PapermillExecutionError as error:
        failed = output.parent / f".{output.stem}.failed.ipynb"  # hidden: no build or test reads it
        os.replace(tmp, failed)
        last = [line for line in str(error.evalue).splitlines() if line.strip()]
        raise ChapterFailed(f"{source.name} failed in cell {error.exec_count} ({error.ename}: "
                            f"{last[-1] if last else ''}); the executed notebook is {failed}") from error
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmlesson.notebooks")
    commands = parser.add_subparsers(dest="command", required=True)
    execute = commands.add_parser("execute", help="execute chapters (in place on their defaults, or into --output)")
    execute.add_argument("notebooks", nargs="+", type=Path)
    execute.add_argument("--output", type=Path, default=None, help="where the executed notebook goes (one notebook)")
    execute.add_argument("--parameters", default="{}", help="papermill parameters as a JSON object")
    args = parser.parse_args(argv)
    parameters = json.loads(args.parameters)
    if args.output is not None and len(args.notebooks) != 1:
        print("error: --output takes one notebook", file=sys.stderr)
        return 2
    for notebook in args.notebooks:
        if not notebook.exists():
            print(f"error: {notebook} does not exist", file=sys.stderr)
            return 2
        started = time.perf_counter()
        code = exit_with_one_line(lambda: execute_notebook(notebook, args.output, parameters) and 0)
        if code:
            return code
        print(f"executed {notebook} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
