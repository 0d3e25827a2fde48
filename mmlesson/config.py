"""``TrainConfig``: the options every run shares, plus its method's own options.

The shared fields are declared here; each method declares its own options as a dataclass
(``Method.Options``, see ``methods/``) which ``TrainConfig.options`` holds. The CLI builds its flags
from both, ``mmlesson.train(**kwargs)`` accepts the same names flat (``alpha=0.5`` goes to OGM-GE's
options), and metrics.json stores the config as a dict, so the three never drift apart.
Execution settings (``EXECUTION_FIELDS``: device, precision switch, threads, output, progress) are
not part of a run's identity (``identity.py``).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass

from .data import DATASETS, REAL_DATASETS
from .data.real import RealKnobs
from .data.synthav import SynthAVConfig
from .errors import ConfigError, check_choice
from .files import plain
from .methods import METHODS
from .models import FUSIONS
from .options import check_fields, describe, flag, option

EXECUTION_FIELDS = ("device", "amp", "threads", "out", "progress")


@dataclass
class TrainConfig:
    """Everything a training run needs: the shared options below and ``options``, the chosen method's
    own options (a dict or its ``Options`` dataclass). ``TrainConfig.build(**flat)`` takes a method's
    options flat (``TrainConfig.build(method="arl", gamma=2.0)``)."""

    data: str = option("synthav", "data set (see `mmlesson data list`)")
    data_root: str | None = option(None, "directory of a prepared data cache (real data sets only)")
    data_knobs: dict = field(default_factory=dict, metadata={"help": "data set knobs, e.g. audio_strength=0.8 (repeatable)"})
    method: str = option("joint", "training method")  # choices come from the METHODS registry
    options: object = field(default=None, metadata={"help": "the method's own options (a dict or its Options "
                                                            "dataclass; see `mmlesson train --help`)"})
    fusion: str = option("concat", "fusion head")
    width: int = option(8, "encoder width: channels of the first ResNet-18 stage (64 = standard ResNet-18)", minimum=1)
    output_stride: int = option(32, "total downsampling of each encoder's last map: 32 is the standard ResNet-18 "
                                    "(a 257 x 188 spectrogram leaves 9 x 6 positions); 8 keeps several positions "
                                    "on small inputs (CCAT's cross-attention tokens, and its resolution-matched "
                                    "controls)", choices=(4, 8, 16, 32))
    epochs: int = option(8, "training epochs", minimum=1)
    batch_size: int = option(64, "batch size", minimum=1)
    lr: float = option(0.05, "SGD learning rate", above=0.0)
    momentum: float = option(0.9, "SGD momentum", minimum=0.0)
    weight_decay: float = option(1e-4, "SGD weight decay", minimum=0.0)
    lr_milestones: tuple[int, ...] = option((), "epochs at which the learning rate is multiplied by --lr-decay "
                                                "(e.g. 70)", minimum=1, nargs="*", metavar="EPOCH")
    lr_decay: float = option(0.1, "learning-rate factor at each milestone", above=0.0)
    seed: int = option(0, "random seed (initialisation and batch order)", minimum=0)
    feature_scale: tuple[float, float] = option((1.0, 1.0), "fixed factors on the audio and the visual encoder's "
                                                "features before fusion (Chapter 5: a feature-scale asymmetry "
                                                "between the modalities)", above=0.0, nargs=2,
                                                metavar=("AUDIO", "VISUAL"))
    probe: bool = option(True, "fit linear probes on frozen features at the end")
    # execution: how and where the run is computed, not what it is (not part of its identity)
    device: str = option("auto", "auto (CUDA if available, else CPU), cpu, cuda or cuda:N")
    amp: bool = option(True, "bf16 mixed precision on CUDA (ignored on CPU)")
    threads: int | None = option(None, "CPU threads of this run: default 1 on the CPU (fastest for the book's small "
                                       "models, and runs in parallel do not compete; $MMLESSON_THREADS overrides "
                                       "it), torch's own default on CUDA; 0 = torch's default (every core, for "
                                       "large models on the CPU)",
                                 minimum=0)
    out: str | None = option(None, "run directory: checkpoint.pt, model.pt and metrics.json (resumes if present)")
    progress: str = option("auto", "progress bar: auto (terminal or interactive notebook), on or off",
                           choices=("auto", "on", "off"))

    def __post_init__(self):
        check_choice("data set", self.data, DATASETS)
        check_choice("method", self.method, METHODS)
        check_choice("fusion", self.fusion, FUSIONS)
        check_fields(self)
        if not isinstance(self.data_knobs, dict):
            raise ConfigError(f"data_knobs must be a dict of knob values, got {self.data_knobs!r}")
        check_device(self.device)
        if self.out is not None and not self.out.strip():
            raise ConfigError("--out is empty (an unset shell variable?); give a run directory, or omit --out to "
                              "keep nothing")
        if self.data_root and self.data not in REAL_DATASETS:
            raise ConfigError(f"--root is the prepared cache of a real data set; {self.data} is generated, not read: "
                              f"drop --root (or give --data {' / '.join(sorted(REAL_DATASETS))})")
        self.options = method_options(self.method, self.options)

    @classmethod
    def build(cls, **kwargs) -> "TrainConfig":
        """A config from flat keywords: the shared fields by name, every other name an option of the
        chosen method (``TrainConfig.build(method="ogm_ge", alpha=0.5, epochs=4)``)."""
        shared = {f.name for f in fields(cls)}
        options = dict(kwargs.pop("options", None) or {})
        for name in [k for k in kwargs if k not in shared]:
            options[name] = kwargs.pop(name)
        return cls(**kwargs, options=options)

    @classmethod
    def stored(cls, config: dict, **overrides) -> "TrainConfig":
        """A config from one a run stored (metrics.json, run.json), with ``overrides``; a run stored before
        ``output_stride`` was a shared field (CCAT's own option then) has it moved to where it is now."""
        config = {**config, **overrides}
        options = dict(config.get("options") or {})
        if "output_stride" in options and "output_stride" not in config:
            config["output_stride"] = options.pop("output_stride")
        return cls(**{**config, "options": options})

    def to_dict(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["options"] = asdict(self.options)
        return plain(values)


def check_device(device, name: str = "--device") -> str:
    """``device`` if it names a device ``engine.resolve_device`` understands (auto, cpu, cuda or cuda:N), else
    a ConfigError naming ``name`` (the CLI's ``--device``, a chapter's ``DEVICE``)."""
    if not (isinstance(device, str) and (device in ("auto", "cpu") or re.fullmatch(r"cuda(:\d+)?", device))):
        raise ConfigError(f"{name} must be auto, cpu, cuda or cuda:N, got {device!r}")
    return device


def method_options(method: str, options):
    """``options`` (None, a dict or the method's Options instance) as the method's checked Options."""
    cls = METHODS[method].Options
    if options is None:
        options = {}
    if is_dataclass(options) and not isinstance(options, type):
        if not isinstance(options, cls):
            raise ConfigError(f"method {method!r} takes {cls.__name__}, got {type(options).__name__}")
        options = asdict(options)
    if not isinstance(options, dict):
        raise ConfigError(f"options of method {method!r} must be a dict, got {options!r}")
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(misplaced_option_message(unknown[0], method))
    instance = cls(**options)
    check_fields(instance)
    return instance


def misplaced_option_message(name: str, method: str) -> str:
    """Why ``name`` is not an option of ``method``, and where it belongs."""
    owners = sorted(m for m, cls in METHODS.items() if name in {f.name for f in fields(cls.Options)})
    if owners:
        return f"{flag(name)} is an option of method {' / '.join(owners)}, not of {method!r}"
    if name in {f.name for f in fields(SynthAVConfig)} | {f.name for f in fields(RealKnobs)}:
        return (f"{name!r} is a data knob: pass data_knobs={{{name!r}: ...}} (command line: --data-knob "
                f"{name}=VALUE)")
    valid = sorted({f.name for f in fields(TrainConfig)} | {f.name for f in fields(METHODS[method].Options)})
    return f"unknown option {name!r} for method {method!r}; valid: {', '.join(valid)}"


def options_help() -> str:
    """Every option with its default and meaning: the shared ones, then each method's own (the same
    declarations the command line's --help is built from)."""
    parts = ["Shared options (name (default): meaning):", describe(TrainConfig)]
    for name, cls in sorted(METHODS.items()):
        if fields(cls.Options):
            parts += [f"Options of method {name!r}:", describe(cls.Options)]
    return "\n".join(parts)


def config_fields():
    return fields(TrainConfig)


def method_option_fields() -> dict[str, tuple]:
    """``{option name: (field, [methods that declare it])}`` over every registered method."""
    found: dict[str, tuple] = {}
    for method, cls in METHODS.items():
        for f in fields(cls.Options):
            found.setdefault(f.name, (f, []))[1].append(method)
    return found
