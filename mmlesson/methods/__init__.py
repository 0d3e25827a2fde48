"""Training methods, by name (one file per method; see base.py for the interface and the registry)."""
from .arl import ARL
from .ccat import CCAT
from .base import METHODS, Method, Stage, StepState, encoder_grad_norms, option_names, register
from .frozen_encoders import FrozenEncoders
from .joint import JointTraining
from .mla import MLA
from .ogm_ge import OGMGE
from .unimodal import UnimodalTraining

__all__ = ["ARL", "CCAT", "METHODS", "FrozenEncoders", "JointTraining", "MLA", "Method", "OGMGE", "Stage", "StepState", "UnimodalTraining",
           "encoder_grad_norms", "option_names", "register"]
