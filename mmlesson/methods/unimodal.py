"""Unimodal training: one encoder and a linear layer, the reference each modality could reach alone."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..options import option
from .base import Method
from .joint import joint_step


@dataclass(frozen=True)
class UnimodalOptions:
    modality: str | None = option(None, "the modality of a unimodal run", choices=("audio", "visual"))

    def __post_init__(self):
        if self.modality is None:
            raise ConfigError("method 'unimodal' needs --modality audio or --modality visual")


class UnimodalTraining(Method):
    """Joint training's step on a model that has only ``modality``'s encoder."""

    name = "unimodal"
    Options = UnimodalOptions
    tiny_options = {"modality": "audio"}

    def model_modalities(self, modalities):
        if self.options.modality not in modalities:
            raise ConfigError(f"modality {self.options.modality!r} is not in this data set ({', '.join(modalities)})")
        return (self.options.modality,)

    def label(self) -> str:
        return f"unimodal-{self.options.modality}"

    def training_step(self, model, batch, optimizer, state):
        return joint_step(model, batch, optimizer, state)
