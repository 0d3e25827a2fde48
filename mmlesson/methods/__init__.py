"""Training methods, by name (one file per method; see base.py for the interface)."""
from .base import Method, StepState, encoder_grad_norms
from .joint import JointTraining
from .unimodal import UnimodalTraining

METHODS = {cls.name: cls for cls in (JointTraining, UnimodalTraining)}

__all__ = ["METHODS", "JointTraining", "Method", "StepState", "UnimodalTraining", "encoder_grad_norms"]
