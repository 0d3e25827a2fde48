"""Unimodal training: one encoder and a linear layer, the reference each modality could reach alone."""
from __future__ import annotations

from ..errors import ConfigError
from .joint import JointTraining


class UnimodalTraining(JointTraining):
    """Same step as joint training, on a model that has only ``config.modality``'s encoder."""

    name = "unimodal"

    def __init__(self, config):
        super().__init__(config)
        if config.modality not in ("audio", "visual"):
            raise ConfigError(f"method 'unimodal' needs --modality audio or --modality visual, got {config.modality!r}")

    def model_modalities(self, modalities):
        if self.config.modality not in modalities:
            raise ConfigError(f"modality {self.config.modality!r} is not in this data set ({', '.join(modalities)})")
        return (self.config.modality,)
