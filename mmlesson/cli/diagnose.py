"""``mmlesson diagnose``: a data set's modality-imbalance signature from its three baselines."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

from ..studies import PREREGISTRATION
from ..errors import ConfigError
from ..files import atomic_write
from ..paths import check_directory_target, write_refusal
from ..signature import as_json, default_recipe, diagnose, render
from ..targets import check_targets, render_targets, targets_for

def run(args) -> int:


    if args.data not in ("synthav",) and not args.root:
        raise ConfigError(f"--data {args.data} needs --root ROOT, its prepared cache (mmlesson data prepare "
                          f"{args.data} --raw RAW --root ROOT)")
    if args.json is not None:
        check_output_file(args.json, "--json")  # before anything trains: the signature must not be lost
    if any(seed < 0 for seed in args.seeds):
        raise ConfigError(f"--seeds must be non-negative integers, got {args.seeds}")
    targets = None
    if args.targets is not None:
        try:
            targets = targets_for(tomllib.loads(targets_file(args.targets).read_text()),
                                  args.recipe or default_recipe(args.data))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"--targets {args.targets}: cannot read it as TOML ({error}); give a readable .toml file")
        if not targets:
            raise ConfigError(f"--targets {args.targets} has no [targets] table; add one, e.g. "
                              f"[targets] weak_branch_minus_chance_at_most = 0.08")
    train = {"epochs": args.epochs} if args.epochs else {}
    table = diagnose(args.data, seeds=args.seeds, recipe=args.recipe, data_knobs=dict(args.data_knobs), root=args.root,
                     results=args.results, workers=args.workers, train=train, progress=args.progress,
                     rerun_threads=args.rerun_threads)
    print(render(table))
    result = as_json(table)
    if targets is not None:
        result["targets"] = check_targets(result, targets)
        print(render_targets(result["targets"]))
    if args.json:
        path = Path(args.json)
        text = json.dumps(result, indent=2) + "\n"
        atomic_write(path, lambda handle: handle.write(text.encode()))
        print(f"signature written to {path}")
    return 0


def check_output_file(text: str, option: str) -> None:
    """Refuse ``option``'s file path in one line unless a file can be written there: its directory is
    creatable, or exists and takes a file (tried with an empty temporary one, removed at once)."""
    path = Path(text)
    if not text.strip() or path.is_dir():
        raise ConfigError(f"{option} needs a file path, got {text!r}")
    check_directory_target(path.parent, option)
    if path.parent.is_dir() and (refusal := write_refusal(path.parent)):
        raise ConfigError(f"{option} {text}: cannot write in {path.parent} ({refusal}); give a writable path")


def targets_file(text: str) -> Path:
    """``--targets``: the file at ``text``, else the shipped one of that name (``preregistration.toml`` or
    ``preregistration`` find the book's preregistration from any directory)."""
    path = Path(text)
    if not path.exists() and Path(text).with_suffix(".toml").name == PREREGISTRATION.name:
        return PREREGISTRATION
    return path
