"""The "pre-trained" model of the decision-layer paper (Fig. 2): each encoder trained alone to
convergence, then frozen, and only the decision layer trained on their concatenated features.

Train the two unimodal runs first (``mmlesson train --method unimodal --modality audio --out A``,
the same for visual), then ``--method frozen_encoders --encoders-from A V``. The encoders' weights
and batch-norm statistics are loaded from those runs' ``model.pt`` and never change: their
parameters get no gradient and they stay in evaluation mode while the head trains. The run's
identity names the two encoder runs by *their* identity hashes, not by their paths, so moving them
does not make it another run. Those identities are read from the encoder runs' directories, or given
as ``upstream`` by whoever plans the runs before any is written (a grid: ``store.plan``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..files import plain
from ..identity import flat_differences, identity_hash
from ..options import option
from ..rundir import RunDirectory
from .base import Method
from .joint import joint_step


def needs_encoder_runs(method: str) -> ConfigError:
    """The refusal of a method that reads two unimodal runs and was given none."""
    return ConfigError(f"method '{method}' needs --encoders-from AUDIO_RUN VISUAL_RUN (two finished unimodal runs)")


@dataclass(frozen=True)
class FrozenEncodersOptions:
    encoders_from: tuple[str, str] | None = option(
        None, "the audio-only and the visual-only run directories whose encoders are loaded and frozen",
        nargs=2, metavar=("AUDIO_RUN", "VISUAL_RUN"))

    def __post_init__(self):
        if self.encoders_from is None:
            raise needs_encoder_runs("frozen_encoders")


def check_encoder_run(run_dir: Path, modality: str, width: int, output_stride: int) -> None:
    if not RunDirectory(run_dir).complete:
        raise ConfigError(f"{run_dir} holds no finished run; train it first with `mmlesson train --method unimodal "
                          f"--modality {modality} --out {run_dir}`")
    config = RunDirectory(run_dir).read_metrics()["config"]
    trained = config["options"].get("modality")
    stride = config.get("output_stride", 32)
    if config["method"] != "unimodal" or trained != modality or (config["width"], stride) != (width, output_stride):
        raise ConfigError(f"{run_dir} is a {config['method']} run (modality {trained}, width {config['width']}, "
                          f"output stride {stride}); --encoders-from needs a unimodal {modality} run of width "
                          f"{width}, output stride {output_stride}")


def load_unimodal_encoder(encoders, modality: str, run_dir, width: int, output_stride: int) -> None:
    """Copy the encoder of a finished unimodal run of ``modality`` into ``encoders[modality]`` (a model's
    ``encoders``, or another set of them: UMT's teachers)."""
    run_dir = Path(run_dir)
    check_encoder_run(run_dir, modality, width, output_stride)
    state = RunDirectory(run_dir).read_weights()
    prefix = f"encoders.{modality}."
    encoders[modality].load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


class FrozenEncoders(Method):
    """Joint training's step with the encoders frozen: only the decision layer learns (the logged
    encoder gradient norms are 0 by construction)."""

    name = "frozen_encoders"
    Options = FrozenEncodersOptions

    def encoder_identities(self) -> list[dict]:
        """The identities of the two encoder runs: given by ``upstream`` (``Method``), else read from their
        directories (finished or declared)."""
        identities = []
        for modality, run_dir in zip(("audio", "visual"), map(Path, self.options.encoders_from)):
            if run_dir in self.upstream:
                identities.append(self.upstream[run_dir])
            elif RunDirectory(run_dir).status == "missing":
                raise ConfigError(f"{run_dir} holds no finished run; train it first with `mmlesson train --method "
                                  f"unimodal --modality {modality} --out {run_dir}`")
            else:
                identities.append(RunDirectory(run_dir).stored_identity())
        return identities

    def identity_options(self) -> dict:
        """Its options, with the encoder runs by identity hash (their content), not by path."""
        return {**super().identity_options(),
                "encoders_from": [identity_hash(identity) for identity in self.encoder_identities()]}

    def check_data(self, data_identity: dict) -> None:
        """The encoders must have been trained on the data this run trains its decision layer on."""
        for run_dir, identity in zip(self.options.encoders_from, self.encoder_identities()):
            differing = flat_differences(identity["data"], plain(data_identity))
            if differing:
                raise ConfigError(f"{run_dir} was trained on other data ({', '.join(differing[:4])} differ); "
                                  f"--encoders-from needs unimodal runs on this run's data")

    def prepare_model(self, model):
        for modality in ("audio", "visual"):
            for parameter in model.encoders[modality].parameters():
                parameter.requires_grad_(False)
        return model

    def initialise(self, model) -> None:
        for modality, run_dir in zip(("audio", "visual"), self.options.encoders_from):
            load_unimodal_encoder(model.encoders, modality, run_dir, self.config.width, self.config.output_stride)

    def training_step(self, model, batch, optimizer, state):
        model.encoders.eval()  # frozen batch-norm statistics too, whatever mode the engine set
        return joint_step(model, batch, optimizer, state)
