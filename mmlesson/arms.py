"""The arms the book compares: each a name (what the chapters' tables print) and the options that train it.

``CORE_ARMS`` are the methods every SynthAV chapter compares (their runs are trained once for the whole
book); Chapters 4 and 5 add their own; ``STUDY_ARMS`` is every arm with a protocol learning rate
(``rates.py``), ``GLANCE_ARMS`` every method of the results at a glance (``studies.py``) and of the
matched study (``matched.py``). An arm with ``encoders_from`` trains on the encoders of the arms it names.
"""
from __future__ import annotations

# The methods every SynthAV chapter compares (their runs are trained once for the whole book).
CORE_ARMS = {
    "audio only": dict(method="unimodal", modality="audio"),
    "visual only": dict(method="unimodal", modality="visual"),
    "joint (concat)": dict(method="joint", fusion="concat"),
    "OGM-GE": dict(method="ogm_ge"),
    "ARL": dict(method="arl"),
    "frozen encoders": dict(method="frozen_encoders", encoders_from=["audio only", "visual only"]),
}
SYNTHAV_ARMS = {**CORE_ARMS, "joint (sum)": dict(method="joint", fusion="sum")}  # Chapters 1-3, 5 and 6
CHAPTER4_ARMS = {"joint (FiLM)": dict(method="joint", fusion="film"), "joint (gated)": dict(method="joint", fusion="gated"),
                 "MLA": dict(method="mla"), "CCAT": dict(method="ccat")}
# Chapter 5's knob: scaling the visual features by 4 also scales the visual pathway's gradients, so the
# arm gets its own rate (at joint training's 0.1 some seeds' visual encoders die).
CHAPTER5_ARMS = {"joint (concat), visual features x4": dict(method="joint", fusion="concat", feature_scale=(1.0, 4.0))}
STUDY_ARMS = {**SYNTHAV_ARMS, **CHAPTER4_ARMS, **CHAPTER5_ARMS}  # every arm with a protocol rate
# Results at a glance (Chapter 6) and the matched study: every method against joint training.
GLANCE_ARMS = {**SYNTHAV_ARMS, "MLA": CHAPTER4_ARMS["MLA"], "CCAT": CHAPTER4_ARMS["CCAT"]}
