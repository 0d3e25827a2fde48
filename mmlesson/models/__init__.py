"""Models: ResNet-18 encoders, fusion heads and the two-modality classifier."""
from .encoders import ENCODERS, AudioEncoder, ResNet18Trunk, VisualEncoder
from .fusion import FUSIONS, ConcatFusion, FiLMFusion, GatedFusion, SharedHeadFusion, SumFusion
from .model import ModelOutput, MultimodalModel

__all__ = ["ENCODERS", "FUSIONS", "AudioEncoder", "ConcatFusion", "FiLMFusion", "GatedFusion", "ModelOutput",
           "MultimodalModel", "ResNet18Trunk", "SharedHeadFusion", "SumFusion", "VisualEncoder"]
