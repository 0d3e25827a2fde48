"""The "pre-trained" model of the decision-layer paper (Fig. 2): each encoder trained alone to
convergence, then frozen, and only the decision layer trained on their concatenated features.

Train the two unimodal runs first (``mmlesson train --method unimodal --modality audio --out A``,
the same for visual), then ``--method frozen_encoders --encoders-from A V``. The encoders' weights
and batch-norm statistics are loaded from those runs' ``model.pt`` and never change: their
parameters get no gradient and they stay in evaluation mode while the head trains.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ConfigError
from ..report import METRICS_FILE, load_metrics
from .joint import JointTraining


def load_unimodal_encoder(model, modality: str, run_dir, width: int) -> None:
    """Copy the encoder of a finished unimodal run of ``modality`` into ``model.encoders[modality]``."""
    run_dir = Path(run_dir)
    weights_path = run_dir / "model.pt"
    if not ((run_dir / METRICS_FILE).exists() and weights_path.exists()):
        raise ConfigError(f"{run_dir} holds no finished run; train it first with `mmlesson train --method unimodal "
                          f"--modality {modality} --out {run_dir}`")
    config = load_metrics(run_dir)["config"]
    if config["method"] != "unimodal" or config["modality"] != modality or config["width"] != width:
        raise ConfigError(f"{run_dir} is a {config['method']} run (modality {config['modality']}, width "
                          f"{config['width']}); --encoders-from needs a unimodal {modality} run of width {width}")
    state = torch.load(weights_path, map_location="cpu")
    prefix = f"encoders.{modality}."
    model.encoders[modality].load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


class FrozenEncoders(JointTraining):
    """Joint training's step with the encoders frozen: only the decision layer learns (the logged
    encoder gradient norms are 0 by construction)."""

    name = "frozen_encoders"

    def __init__(self, config):
        super().__init__(config)
        if len(config.encoders_from) != 2:
            raise ConfigError("method 'frozen_encoders' needs --encoders-from AUDIO_RUN VISUAL_RUN "
                              "(two finished unimodal runs)")

    def prepare_model(self, model):
        for modality, run_dir in zip(("audio", "visual"), self.config.encoders_from):
            load_unimodal_encoder(model, modality, run_dir, self.config.width)
            for parameter in model.encoders[modality].parameters():
                parameter.requires_grad_(False)
        return model

    def training_step(self, model, batch, optimizer, state):
        model.encoders.eval()  # frozen batch-norm statistics too, whatever mode the engine set
        return super().training_step(model, batch, optimizer, state)
