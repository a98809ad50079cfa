"""Refinement thresholds from the data instead of by hand: ``auto`` reads the CAMs' own evaluation on the
pixel-labeled split (eval_cams' JSON), so a dataset whose CAMs are broader or sharper than the demo's gets planes that
fit its CAMs. Hand values stay overrides (and ``config/voc12.yaml`` keeps IRNet's).

- the CAMs' best background threshold t* (where thresholded CAMs best match the labeled masks) is the plane of the
  confident foreground (``ir_label.fg_thres``) and of the CRF's unary (``crf.bg_thres``);
- the confident background plane (``ir_label.bg_thres``) is the largest threshold whose background is still at least
  ``bg_precision`` pure (share of the pixels below the plane that are background), never above t*;
- ``crf.bg_thres: search`` goes one step further for the CRF masks: the plane whose CRF masks (not thresholded CAMs)
  best match the labeled split, searched by the ``crf_plane`` stage (the CRF moves boundaries, so the two differ);
- the random walk's background: its constant plane (``random_walk.bg_thres``) is t*, and the walked plane
  ``(1 - max cam)^alpha`` gets ``alpha = ln t* / ln(1 - t*)``, the exponent at which it equals the class score exactly
  at t* (1 at t* = 0.5, the demo's hand value; 0.30 at 0.7), so before the walk the background wins where
  eval_cams's thresholding puts background.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

AUTO = "auto"


def confident_background_threshold(cam_eval: dict[str, Any], bg_precision: float) -> float:
    """The largest threshold <= the best one whose background precision is at least ``bg_precision`` (the lowest
    threshold when none is)."""
    best = cam_eval["best_threshold"]
    pure = [t for t, p in zip(cam_eval["thresholds"], cam_eval["background_precision_per_threshold"])
            if t <= best and p is not None and p >= bg_precision]
    if not pure:
        log.warning("no background threshold reaches precision %.3f; using the lowest, %g", bg_precision,
                    cam_eval["thresholds"][0])
        return float(cam_eval["thresholds"][0])
    return float(max(pure))


def _best_threshold(cam_eval: dict[str, Any] | None, key: str) -> float:
    """The CAMs' best threshold, which every ``auto`` plane starts from; ``key`` names the setting that asked."""
    if cam_eval is None:
        raise ValueError(f"{key}: 'auto' needs the CAMs' evaluation on the pixel-labeled train split")
    return float(cam_eval["best_threshold"])


def resolve_ir_label(section: dict[str, Any], cam_eval: dict[str, Any] | None) -> dict[str, float]:
    """``refine.ir_label`` with ``auto`` replaced by the values of this method's CAM evaluation."""
    fg, bg = section["fg_thres"], section["bg_thres"]
    if AUTO in (fg, bg):
        best = _best_threshold(cam_eval, "refine.ir_label")
        fg = best if fg == AUTO else fg
        if bg == AUTO:
            bg = min(confident_background_threshold(cam_eval, section["bg_precision"]), fg)
        log.info("refine.ir_label from the CAMs' evaluation: fg_thres %g (given %s), bg_thres %g (given %s)",
                 fg, section["fg_thres"], bg, section["bg_thres"])
    return {"fg_thres": fg, "bg_thres": bg}


SEARCH = "search"
CRF_SEARCH_KEYS = ("search_planes", "search_images")  # what only crf_plane reads


def resolve_crf(section: dict[str, Any], cam_eval: dict[str, Any] | None,
                plane: dict[str, Any] | None = None) -> dict[str, Any]:
    """``refine.crf`` for crf_masks: an ``auto`` background plane replaced by the CAMs' best threshold, a ``search``
    one by crf_plane's best plane (its JSON, ``plane``); the search's own keys left out."""
    resolved = {key: value for key, value in section.items() if key not in CRF_SEARCH_KEYS}
    if section["bg_thres"] == AUTO:
        resolved["bg_thres"] = _best_threshold(cam_eval, "refine.crf.bg_thres")
        log.info("refine.crf.bg_thres auto: %g, the CAMs' best threshold", resolved["bg_thres"])
    elif section["bg_thres"] == SEARCH:
        if plane is None:
            raise ValueError("refine.crf.bg_thres: 'search' needs crf_plane's search on the pixel-labeled train split")
        resolved["bg_thres"] = float(plane["best_plane"])
        log.info("refine.crf.bg_thres search: %g, the best of crf_plane's planes", resolved["bg_thres"])
    return resolved


def walk_alpha(threshold: float) -> float:
    """The exponent at which ``(1 - m)^alpha`` equals ``m`` at ``m = threshold``."""
    return math.log(threshold) / math.log(1 - threshold)


def resolve_random_walk(section: dict[str, Any], cam_eval: dict[str, Any] | None) -> dict[str, Any]:
    """``refine.random_walk`` with an ``auto`` ``bg_thres`` or ``alpha`` replaced from the CAMs' best threshold."""
    automatic = [key for key in ("bg_thres", "alpha") if section[key] == AUTO]
    if not automatic:
        return dict(section)
    best = _best_threshold(cam_eval, f"refine.random_walk.{automatic[0]}")
    resolved = {**section, **({"bg_thres": best} if "bg_thres" in automatic else {}),
                **({"alpha": walk_alpha(best)} if "alpha" in automatic else {})}
    log.info("refine.random_walk from the CAMs' best threshold %g: bg_thres %g, alpha %.3f", best,
             resolved["bg_thres"], resolved["alpha"])
    return resolved


def read_stage_json(path: str | Path | None) -> dict[str, Any] | None:
    """A stage's JSON that thresholds are read from (eval_cams', crf_plane's); None where the rule has no such input."""
    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
