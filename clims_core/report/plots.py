"""The report's plots (matplotlib, Agg) as PNG bytes: the HTML embeds them, the stage also writes them beside it."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from clims_core.report.names import method_name

# Methods keep their colour in every plot (the figures' column titles use the same names).
METHOD_COLOURS = {"cam": "#4e79a7", "puzzlecam": "#f28e2b", "clims": "#59a14f"}
_FALLBACK_COLOURS = ["#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]


def _colour(method: str, index: int) -> str:
    return METHOD_COLOURS.get(method, _FALLBACK_COLOURS[index % len(_FALLBACK_COLOURS)])


def to_png(figure: Figure) -> bytes:
    """PNG bytes of a figure, without a timestamp in its metadata (same data, same bytes)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def threshold_curves(cams: Mapping[str, Mapping[str, Any]]) -> bytes:
    """mIoU against the background threshold, one line per CAM method, its best point starred."""
    figure = Figure(figsize=(6.4, 3.8), dpi=110)
    axes = figure.add_subplot()
    for index, (method, entry) in enumerate(cams.items()):
        curve = entry["curve"]
        values = [np.nan if m is None else m for m in curve["miou"]]
        colour = _colour(method, index)
        axes.plot(curve["thresholds"], values, marker="o", markersize=3, color=colour,
                  label=f"{method_name(method)}: {entry['miou']:.1f} at {entry['best_threshold']:g}")
        axes.plot([entry["best_threshold"]], [entry["miou"]], marker="*", markersize=13, color=colour, zorder=3)
    axes.set_xlabel("background threshold")
    axes.set_ylabel("mIoU (%)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8, title="best mIoU", title_fontsize=8)
    figure.tight_layout()
    return to_png(figure)


def grouped_bars(values: Mapping[str, Mapping[str, float | None]], ylabel: str, title: str = "") -> bytes:
    """One group of bars per class (x), one bar per series (e.g. per method); missing values are left out."""
    series = list(values)
    classes = list(dict.fromkeys(name for per_class in values.values() for name in per_class))
    figure = Figure(figsize=(max(6.4, 0.55 * len(classes) * max(1, len(series)) + 1.5), 3.8), dpi=110)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(series))
    x = np.arange(len(classes))
    for index, name in enumerate(series):
        heights = [values[name].get(cls) for cls in classes]
        heights = [np.nan if h is None else h for h in heights]
        axes.bar(x + (index - (len(series) - 1) / 2) * width, heights, width, label=method_name(name),
                 color=_colour(name, index))
    axes.set_xticks(x, classes, rotation=30 if len(classes) > 8 else 0, ha="right" if len(classes) > 8 else "center")
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, 100)
    axes.grid(axis="y", alpha=0.3)
    if title:
        axes.set_title(title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 if len(classes) <= 8 else -0.25),
                ncol=min(len(series), 4), fontsize=8, frameon=False)
    figure.tight_layout()
    return to_png(figure)
