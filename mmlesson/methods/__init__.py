"""Training methods, by name (one file per method; see base.py for the interface)."""
from .arl import ARL
from .base import Method, StepState, encoder_grad_norms
from .frozen_encoders import FrozenEncoders
from .joint import JointTraining
from .ogm_ge import OGMGE
from .unimodal import UnimodalTraining

METHODS = {cls.name: cls for cls in (JointTraining, UnimodalTraining, OGMGE, ARL, FrozenEncoders)}

__all__ = ["ARL", "METHODS", "FrozenEncoders", "JointTraining", "Method", "OGMGE", "StepState", "UnimodalTraining", "encoder_grad_norms"]
