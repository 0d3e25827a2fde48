"""``TrainConfig``: every option of a training run, its default and its help text.

The CLI builds its options from these fields, ``mmlesson.train(**kwargs)`` accepts the same names,
and metrics.json stores the config as a dict, so the three never drift apart.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from .errors import ConfigError, check_choice
from .report import plain


def option(default, help: str, **cli):
    """A config field with its help text; ``cli`` holds argparse hints (``nargs``, ``metavar``)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass
class TrainConfig:
    data: str = option("synthav", "data set (see `mmlesson data list`)")
    data_root: str | None = option(None, "directory of a prepared data cache (real data sets only)")
    data_knobs: dict = field(default_factory=dict, metadata={"help": "data set knobs, e.g. audio_strength=0.8 (repeatable)"})
    method: str = option("joint", "training method")  # choices come from the METHODS registry
    modality: str | None = option(None, "the modality of a unimodal run: audio or visual")
    fusion: str = option("concat", "fusion head")
    width: int = option(8, "encoder width: channels of the first ResNet-18 stage (64 = standard ResNet-18)")
    epochs: int = option(8, "training epochs")
    batch_size: int = option(64, "batch size")
    lr: float = option(0.05, "SGD learning rate")
    momentum: float = option(0.9, "SGD momentum")
    weight_decay: float = option(1e-4, "SGD weight decay")
    lr_milestones: tuple = option((), "epochs at which the learning rate is multiplied by --lr-decay (e.g. 70)",
                                  nargs="*", metavar="EPOCH")
    lr_decay: float = option(0.1, "learning-rate factor at each milestone")
    seed: int = option(0, "random seed (initialisation and batch order)")
    # OGM-GE (Chapter 2; Peng et al., CVPR 2022)
    alpha: float = option(0.8, "OGM-GE: modulation strength alpha of k = 1 - tanh(alpha * rho)")
    modulation_window: tuple = option((0, 50), "OGM-GE: first and last epoch (inclusive) of modulation",
                                      nargs=2, metavar=("START", "END"))
    ge: bool = option(True, "OGM-GE: add Gaussian noise with each gradient's own std (generalisation enhancement)")
    ogm_form: str = option("jump", "OGM-GE coefficient: jump (1 - tanh(alpha rho), Eq. 10 as released) or "
                                   "continuous (1 - tanh(alpha (rho - 1)))")
    # decision layer on frozen, separately trained encoders (Chapter 5; decision-layer paper, Fig. 2)
    encoders_from: tuple = option((), "frozen_encoders: the audio-only and the visual-only run directories whose "
                                      "encoders are loaded and frozen", nargs=2, metavar=("AUDIO_RUN", "VISUAL_RUN"),
                                  type=str)
    modulated_params: str = option("conv", "OGM-GE: modulate conv weights only (conv, as released) or every "
                                           "encoder parameter (all)")
    # ARL (Chapter 3; "Improving Multimodal Learning via Imbalanced Learning", ICCV 2025)
    gamma: float = option(4.0, "ARL: weight of the unimodal losses, L = CE(fused) + gamma (CE(audio) + CE(visual)) (Eq. 22)")
    temperature: float = option(4.0, "ARL: temperature T of the coefficients softmax(T [q_a/q_v, d_a/d_v]) (Eq. 18; "
                                     "the paper uses 8 for CREMA-D, 4 otherwise)")
    unimodal_loss: bool = option(True, "ARL: add the unimodal bias regularisation gamma (CE(audio) + CE(visual))")
    asymmetric: bool = option(True, "ARL: scale each encoder's gradient by its coefficient (asymmetric learning)")
    residual: bool = option(True, "ARL: keep the original gradient as a residual, g + a g (else a g) (Eq. 19-20)")
    encoder_grad_scale: tuple = option((1.0, 1.0), "joint: fixed factors on the gradient reaching the audio and the "
                                                   "visual encoder (ARL's Fig. 1(b) experiment)", nargs=2,
                                       metavar=("AUDIO", "VISUAL"), type=float)
    device: str = option("auto", "auto (CUDA if available, else CPU), cpu, cuda or cuda:N")
    amp: bool = option(True, "bf16 mixed precision on CUDA (ignored on CPU)")
    probe: bool = option(True, "fit linear probes on frozen features at the end")
    out: str | None = option(None, "run directory: checkpoint.pt, model.pt and metrics.json (resumes if present)")
    progress: str = option("auto", "progress bar: auto (terminal or interactive notebook), on or off")

    def __post_init__(self):
        from .data import DATASETS
        from .methods import METHODS
        from .models import FUSIONS

        check_choice("data set", self.data, DATASETS)
        check_choice("method", self.method, METHODS)
        check_choice("fusion", self.fusion, FUSIONS)
        if self.modality is not None:
            check_choice("modality", self.modality, ("audio", "visual"))
        check_choice("progress setting", self.progress, ("auto", "on", "off"))
        check_choice("OGM-GE coefficient form", self.ogm_form, ("jump", "continuous"))
        check_choice("set of modulated parameters", self.modulated_params, ("conv", "all"))
        self.modulation_window = tuple(int(e) for e in self.modulation_window)
        self.encoders_from = tuple(str(run) for run in self.encoders_from)
        self.encoder_grad_scale = tuple(float(v) for v in self.encoder_grad_scale)
        if len(self.encoder_grad_scale) != 2 or not all(math.isfinite(v) and v > 0 for v in self.encoder_grad_scale):
            raise ConfigError(f"encoder_grad_scale must be two positive numbers AUDIO VISUAL, got {self.encoder_grad_scale!r}")
        for name in ("gamma", "temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if len(self.modulation_window) != 2 or self.modulation_window[0] > self.modulation_window[1]:
            raise ConfigError(f"modulation_window must be START END with START <= END, got {self.modulation_window!r}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ConfigError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        for name in ("width", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "momentum", "weight_decay", "lr_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.lr == 0:
            raise ConfigError("lr must be > 0")
        self.lr_milestones = tuple(int(m) for m in self.lr_milestones)
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def to_dict(self) -> dict:
        return plain(asdict(self))

    def identity(self) -> dict:
        """The fields that define a run's result (not where it is written or how it is displayed)."""
        data = self.to_dict()
        for name in ("out", "progress"):
            data.pop(name)
        return data


def config_fields():
    return fields(TrainConfig)
