"""CCT (Ouali, Hudelot, Tami: Semi-Supervised Semantic Segmentation with Cross-Consistency Training, CVPR 2020):
encoder + PSP (:mod:`.encoder`), main and auxiliary decoders (:mod:`.decoders`), perturbations (:mod:`.perturbations`).
"""

from clims_core.models.cct.decoders import KINDS, PerturbationSettings
from clims_core.models.cct.encoder import EncoderSpec
from clims_core.models.cct.model import CCT, DEFAULT_DECODERS, CctSpec

__all__ = ["CCT", "CctSpec", "DEFAULT_DECODERS", "EncoderSpec", "KINDS", "PerturbationSettings"]
