"""The errors mmlesson raises on purpose: each carries a one-line message that names the fix."""
import difflib
import sys
import traceback


class MMLessonError(Exception):
    """Base class: the CLI prints the message on one line instead of a traceback."""


class ConfigError(MMLessonError, ValueError):
    """A name or value in a run's configuration is not valid (CLI exit code 2)."""


class TrainingDiverged(MMLessonError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class IncompleteRun(MMLessonError, FileNotFoundError):
    """A run directory holds no complete metrics.json yet."""


def check_choice(kind: str, value: str, choices) -> str:
    """Return `value` if it is one of `choices`, else raise a ConfigError listing them and suggesting the
    closest (``did_you_mean``)."""
    choices = sorted(choices)
    if value not in choices:
        raise ConfigError(f"unknown {kind} {value!r}{did_you_mean(value, choices)}; choose one of: {', '.join(choices)}")
    return value


def did_you_mean(name: str, known, strip: str = "") -> str:
    """`` (did you mean NAME?)`` for the closest of ``known`` to a mistyped ``name``, or nothing."""
    match = closest(name, known, strip)
    return f" (did you mean {match}?)" if match else ""


def closest(name: str, known, strip: str = ""):
    """The closest of ``known`` to ``name`` (difflib's), or None; ``strip``: characters left out of the
    comparison at the start of each (``"-"`` for options, else every ``--x`` looks alike)."""
    spelled = {str(k).lstrip(strip): k for k in known}
    close = difflib.get_close_matches(str(name).lstrip(strip), list(spelled), n=1)
    return spelled[close[0]] if close else None


def exit_with_one_line(action, debug: bool = False) -> int:
    """Run ``action()`` for a command line: an expected failure becomes one line on stderr and exit
    code 2 (usage) or 1 (runtime); an interruption says how to resume, exit code 130. With ``debug``
    the traceback is shown too."""
    try:
        return action()
    except (ConfigError, MMLessonError, KeyboardInterrupt) as error:
        if debug:
            traceback.print_exc()
        if isinstance(error, KeyboardInterrupt):
            print("mmlesson: interrupted; run the same command again to resume where it stopped", file=sys.stderr)
            return 130
        print(f"mmlesson: error: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
              file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1
