"""The errors mmlesson raises on purpose: each carries a one-line message that names the fix."""
import sys


class MMLessonError(Exception):
    """Base class: the CLI prints the message on one line instead of a traceback."""


class ConfigError(MMLessonError, ValueError):
    """A name or value in a run's configuration is not valid (CLI exit code 2)."""


class TrainingDiverged(MMLessonError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class IncompleteRun(MMLessonError, FileNotFoundError):
    """A run directory holds no complete metrics.json yet."""


def check_choice(kind: str, value: str, choices) -> str:
    """Return `value` if it is one of `choices`, else raise a ConfigError listing them."""
    choices = sorted(choices)
    if value not in choices:
        raise ConfigError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")
    return value


def exit_with_one_line(action, debug: bool = False) -> int:
    """Run ``action()`` for a command line: an expected failure becomes one line on stderr and exit
    code 2 (usage) or 1 (runtime); an interruption says how to resume, exit code 130. With ``debug``
    the traceback is shown too."""
    try:
        return action()
    except (ConfigError, MMLessonError, KeyboardInterrupt) as error:
        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(error, KeyboardInterrupt):
            print("mmlesson: interrupted; run the same command again to resume where it stopped", file=sys.stderr)
            return 130
        print(f"mmlesson: error: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
              file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1
