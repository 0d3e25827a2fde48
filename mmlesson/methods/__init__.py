"""Training methods, by name (one file per method; see base.py for the interface)."""
from .base import Method, StepState, encoder_grad_norms
from .frozen_encoders import FrozenEncoders
from .joint import JointTraining
from .ogm_ge import OGMGE
from .unimodal import UnimodalTraining

METHODS = {cls.name: cls for cls in (JointTraining, UnimodalTraining, OGMGE, FrozenEncoders)}

__all__ = ["METHODS", "FrozenEncoders", "JointTraining", "Method", "OGMGE", "StepState", "UnimodalTraining", "encoder_grad_norms"]
