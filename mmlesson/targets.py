"""Calibration targets: the bounds a preregistration sets on a regime's imbalance signature
(``mmlesson diagnose --targets``, the preregistration's ``[targets]`` tables), each checked against the
signature's JSON form (``signature.as_json``) and printed one per line."""
from __future__ import annotations

import math

from .errors import ConfigError

# The calibration targets a regime can be held to (a preregistration's [targets] table names them with a
# bound): each one's value from the JSON signature, and whether the bound is an upper or a lower one.
TARGETS = {
    "weak_branch_minus_chance_at_most": lambda s: s[s["weak"]]["branch"] - s["chance"],
    "weak_alone_minus_chance_at_least": lambda s: s[s["weak"]]["alone"] - s["chance"],
    "weak_alone_minus_joint_branch_at_least": lambda s: s[s["weak"]]["alone"] - s[s["weak"]]["branch"],
    "joint_minus_best_unimodal_at_most": lambda s: s["rows"]["joint minus best unimodal"]["mean"],
    "weak_probe_alone_minus_joint_at_least": lambda s: s[s["weak"]]["probe_alone"] - s[s["weak"]]["probe"],
    "dominant_fits_before_weak_learns_share_at_least":
        lambda s: s["rows"]["dominant fits before weak learns (share of seeds)"]["mean"],
    "oracle_fused_minus_joint_at_least": lambda s: s["oracle"]["fused"] - s["fused"],
    # precision: a regime whose fused accuracy is a coin judges nothing
    "joint_fused_sd_at_most": lambda s: s["precision"]["joint_fused_sd"],
    "rerun_mean_abs_change_at_most": lambda s: s["precision"]["rerun_mean_abs_change_fused"],
    "val_test_correlation_at_least": lambda s: s["precision"]["val_test_correlation"],
    # room for a rescue of the weak modality to show in fused accuracy
    "ensemble_minus_best_unimodal_at_least": lambda s: s["rows"]["unimodal ensemble minus best unimodal"]["mean"],
    # CREMA-D's paradox: the starved modality is the better one alone
    "weak_alone_minus_dominant_alone_at_least": lambda s: s[s["weak"]]["alone"] - s[s["dominant"]]["alone"],
}


def targets_for(document: dict, recipe: str) -> dict | None:
    """The targets a preregistration (a parsed TOML ``document``) sets for ``recipe``: those of a section naming
    the recipe (``[severe_v2] recipe = ...`` with ``[severe_v2.targets]``), else the top-level ``[targets]``."""
    for section in document.values():
        if isinstance(section, dict) and section.get("recipe") == recipe and "targets" in section:
            return section["targets"]
    return document.get("targets")


def check_targets(signature_json: dict, targets: dict) -> list[dict]:
    """Each of ``targets`` (``{name: bound}``, names from ``TARGETS``) against the JSON signature: one
    row ``{target, value, bound, met}`` per target."""
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        raise ConfigError(f"unknown target {unknown[0]!r}; known targets: {', '.join(TARGETS)}")
    rows = []
    for name, bound in targets.items():
        try:
            value = TARGETS[name](signature_json)
        except (KeyError, TypeError):  # not measured here (the oracle of a real data set, no re-execution)
            rows.append({"target": name, "value": None, "bound": bound, "met": None})
            continue
        if value is None or (isinstance(value, float) and math.isnan(value)):
            rows.append({"target": name, "value": None, "bound": bound, "met": None})
            continue
        met = value <= bound if name.endswith("_at_most") else value >= bound
        rows.append({"target": name, "value": value, "bound": bound, "met": bool(met)})
    return rows


def render_targets(rows: list[dict]) -> str:
    """One line per target: its value, its bound, met or not."""
    lines = []
    for row in rows:
        value = "unknown" if row["value"] is None else f"{row['value']:+.3f}"
        verdict = {True: "met", False: "NOT met", None: "not measurable here"}[row["met"]]
        relation = "<=" if row["target"].endswith("_at_most") else ">="
        lines.append(f"target {row['target']}: {value} {relation} {row['bound']:+.3f}  {verdict}")
    met = sum(1 for row in rows if row["met"])
    lines.append(f"{met} of {len(rows)} targets met")
    return "\n".join(lines)
