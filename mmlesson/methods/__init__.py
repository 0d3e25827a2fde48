"""Training methods, by name (one file per method; see base.py for the interface and the registry)."""
from .arl import ARL
from .base import METHODS, Method, StepState, encoder_grad_norms, register
from .frozen_encoders import FrozenEncoders
from .joint import JointTraining
from .ogm_ge import OGMGE
from .unimodal import UnimodalTraining

__all__ = ["ARL", "METHODS", "FrozenEncoders", "JointTraining", "Method", "OGMGE", "StepState", "UnimodalTraining",
           "encoder_grad_norms", "register"]
