"""The report page: one self-contained HTML file (inline CSS, PNGs embedded as data URIs, no script, no network).

Built from summary.json (every table and plot) plus the rendered mask figures. A section appears only when its stage
ran; every section holds at least one table or figure (the browser test checks both).
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clims_core.report.figures import STUFF_MIN_SHARE, ClassFigure
from clims_core.report.names import REFINER_NAMES, method_name
from clims_core.report.seg_runs import PublishedRow, seg_run_label


CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --band: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
       color: var(--ink); }
header { background: #24292f; color: #fff; padding: 18px 32px 12px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: #c9d1d9; font-size: 13px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 32px; z-index: 1; }
nav a { margin-right: 18px; color: var(--accent); text-decoration: none; font-size: 14px; }
main { max-width: 1180px; padding: 8px 32px 48px; }
section { margin-top: 28px; }
h2 { font-size: 20px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.note, figcaption, .muted { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; }
th { background: var(--band); text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fbfcfd; }
td.best { font-weight: 700; }
tr.published td { font-style: italic; color: var(--muted); }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 9px; background: #ddf4ff;
         color: #0550ae; font-style: normal; margin-left: 6px; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
details { margin: 8px 0; }
pre { background: var(--band); padding: 10px; overflow-x: auto; font-size: 12px; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
"""


@dataclass(frozen=True)
class Picture:
    """A PNG for the page; ``name`` is also its file name in the figures folder."""

    name: str
    png: bytes
    alt: str
    caption: str = ""


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: float | int | None, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}{suffix}"


@dataclass(frozen=True)
class Cell:
    """A table cell: text, right-aligned when numeric, bold when it is the best of its column."""

    text: str
    numeric: bool = False
    best: bool = False


def table(header: Sequence[str], rows: Iterable[Sequence[Cell | str]], row_classes: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        cells = []
        for cell in row:
            cell = cell if isinstance(cell, Cell) else Cell(str(cell))
            css = " ".join(c for c in ("num" if cell.numeric else "", "best" if cell.best else "") if c)
            cells.append(f"<td{f' class={chr(34)}{css}{chr(34)}' if css else ''}>{cell.text}</td>")
        css = row_classes[index] if row_classes and row_classes[index] else ""
        body.append(f"<tr{f' class={chr(34)}{css}{chr(34)}' if css else ''}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def numeric_cells(values: Sequence[Sequence[float | None]], best: str | None = "max", per: str = "column",
                  digits: int = 1, suffix: str = "") -> list[list[Cell]]:
    """Rows of numeric cells; the best value (``max``/``min``) of each column (or row) is bold when it is unique."""
    def winners(line: Sequence[float | None]) -> set[int]:
        present = [(v, i) for i, v in enumerate(line) if v is not None]
        if not best or len(present) < 2:
            return set()
        top = (max if best == "max" else min)(v for v, _ in present)
        hits = {i for v, i in present if v == top}
        return hits if len(hits) == 1 else set()

    marks = [[False] * len(row) for row in values]
    if per == "row":
        for r, row in enumerate(values):
            for i in winners(row):
                marks[r][i] = True
    else:
        for j, column in enumerate(zip(*values)):
            for i in winners(column):
                marks[i][j] = True
    return [[Cell(number(v, digits, suffix), True, marks[r][j]) for j, v in enumerate(row)]
            for r, row in enumerate(values)]


def key_value_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of labelled values (labels as row headers)."""
    body = "".join(f"<tr><th>{escape(key)}</th><td>{value}</td></tr>" for key, value in rows)
    return f"<table><tbody>{body}</tbody></table>"


def picture(pic: Picture) -> str:
    data = base64.b64encode(pic.png).decode("ascii")
    caption = f"<figcaption>{pic.caption}</figcaption>" if pic.caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{escape(pic.alt)}">{caption}</figure>'


def grid(*blocks: str) -> str:
    """Blocks side by side where the page is wide enough (each block keeps its heading)."""
    return '<div class="grid">' + "".join(f"<div>{b}</div>" for b in blocks if b) + "</div>"


def section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}"><h2>{escape(title)}</h2>{body}</section>'


def _pair_cells(pairs: Sequence[str]) -> list[str]:
    return [escape(pair.replace("/", " on ")) for pair in pairs]


def _mious(entries: Mapping[str, Mapping[str, Any]], name: Callable[[str], str]) -> Cell:
    return Cell(", ".join(f"{name(key)} {number(entry['miou'])}" for key, entry in entries.items()))


def glance_section(summary: Mapping[str, Any]) -> str:
    """The claims of the run in one table: which stage, what was compared, the figures."""
    rows: list[list[Cell | str]] = []
    trunk = summary.get("trunk")
    if trunk:
        rows.append(["trunk", "held-out word mAP on the captions corpus (pretrain_trunk)",
                     Cell(f"before {number(trunk['heldout_map']['before'])}, after "
                          f"{number(trunk['heldout_map']['after'])}")])
    clip = summary.get("clip", {})
    if clip:
        maps = ", ".join(f"{escape(name)} {number(entry['zero_shot_map'])}" for name, entry in clip.items())
        rows.append(["CLIP", "zero-shot multi-label mAP on val", Cell(maps)])
    cams = summary.get("cams", {})
    if cams:
        rows.append(["CAMs", "mIoU on the pixel-labeled train split", _mious(cams, method_name)])
        pairs = list(dict.fromkeys(p for e in cams.values() for p in e.get("confounder_fp", {})))
        if pairs:
            lines = [f"{escape(p)}: " + ", ".join(f"{method_name(m)} {number(e['confounder_fp'].get(p), 1, '%')}"
                                                  for m, e in cams.items() if "confounder_fp" in e) for p in pairs]
            rows.append(["CAMs", "confounder false positives (lower is better)", Cell("<br>".join(lines))])
    masks = summary.get("masks", {})
    if masks:
        rows.append(["pseudo masks", "mIoU on the pixel-labeled train split", _mious(masks, method_name)])
    seg = summary.get("seg", {})
    if seg:
        rows.append(["segmentation", "mIoU on val", _mious(seg, escape)])
    if not rows:
        return ""
    return section("glance", "At a glance", table(["stage", "measure", "this run"], rows))


def trunk_section(trunk: Mapping[str, Any]) -> str:
    """pretrain_trunk, the demo's stand-in for ImageNet: how well the trunk names each word of held-out captions."""
    per_word = trunk["heldout_ap_per_word"]
    words = list(dict.fromkeys(w for stage in per_word.values() for w in stage))
    values = [[per_word.get("before", {}).get(w), per_word.get("after", {}).get(w)] for w in words]
    rows = [[Cell(escape(w)), *cells] for w, cells in zip(words, numeric_cells(values, per="row"))]
    mean_row = [Cell("<b>mAP</b>"), *numeric_cells([[trunk["heldout_map"].get("before"),
                                                      trunk["heldout_map"].get("after")]])[0]]
    note = (f"The trunk learns to name the class and stuff words of each caption ({number(trunk.get('epochs'))} "
            "epochs on the captions corpus, never a train or val image); AP per word on held-out caption images, "
            "before (random init) and after. Its weights start every method where VOC starts from ImageNet.")
    return section("trunk", "Pretrained trunk", table(["word", "before", "after"], [*rows, mean_row])
                   + f'<p class="note">{escape(note)}</p>')


def _per_key_table(runs: dict[str, dict[str, Any]], names: list[str], field: str, title: str, key_label: str) -> str:
    """One row per key of ``runs[name][field]`` (a class or a word), one column per run that has the field; "" if none."""
    having = [n for n in names if field in runs[n]]
    if not having:
        return ""
    keys = list(dict.fromkeys(k for n in having for k in runs[n][field]))
    values = [[runs[n][field].get(k) for n in having] for k in keys]
    rows = [[Cell(escape(k)), *cells] for k, cells in zip(keys, numeric_cells(values, per="row"))]
    return f"<h3>{title}</h3>" + table([key_label, *having], rows)


def clip_section(clip: Mapping[str, Mapping[str, Any]]) -> str:
    names = list(clip)
    head = ["CLIP", "zero-shot mAP", "stuff test: objects named right", "stuff test: stuff named right"]
    values = [[clip[n].get("zero_shot_map"), clip[n].get("stuff_test_object_accuracy"),
               clip[n].get("stuff_test_stuff_accuracy")] for n in names]
    rows = [[Cell(escape(n)), *cells] for n, cells in zip(names, numeric_cells(values))]
    body = table(head, rows)
    crops = next((clip[n]["stuff_test_crops"] for n in names if "stuff_test_crops" in clip[n]), None)
    note = ("Zero-shot mAP: each val image scored against the object prompt of every class, AP per class over images. "
            "Stuff test: one object (or one stuff) of a val image is cut out with its ground-truth mask and CLIP must "
            "pick the right word among all class and stuff prompts, which is what CLIMS relies on.")
    if crops:
        note += f" Crops: {number(crops.get('object'))} objects, {number(crops.get('stuff'))} stuff."
    body += f'<p class="note">{escape(note)}</p>'
    blocks = [_per_key_table(clip, names, "zero_shot_ap", "Zero-shot AP per class", "class"),
              _per_key_table(clip, names, "stuff_test_per_word", "Stuff test per word (% named right)", "word")]
    body += grid(*blocks)
    return section("clip", "CLIP", body)


def cams_section(cams: Mapping[str, Mapping[str, Any]], curves: Picture | None, bars: Picture | None) -> str:
    methods = list(cams)
    values = [[cams[m]["miou"]] for m in methods]
    rows = [[Cell(method_name(m)), *cells, Cell(number(cams[m].get("best_threshold"), 2), True),
             Cell(number(cams[m].get("images")), True)] for m, cells in zip(methods, numeric_cells(values))]
    body = table(["method", "mIoU", "best threshold", "images"], rows)
    body += ('<p class="note">CAMs turned into label maps by a constant background plane at each threshold (IRNet); '
             "mIoU over background and the classes, on the pixel-labeled train split.</p>")
    if curves:
        body += picture(curves)
    if bars:
        body += picture(bars)
    classes = list(dict.fromkeys(c for m in methods for c in cams[m]["per_class"]))
    values = [[cams[m]["per_class"].get(c) for m in methods] for c in classes]
    cells = numeric_cells(values, per="row")
    for c, row in zip(classes, cells):  # recall beside IoU: partial activation shows as low recall
        for j, m in enumerate(methods):
            recall = cams[m].get("per_class_recall", {}).get(c)
            if recall is not None:
                row[j] = Cell(f"{row[j].text} <span class=\"muted\">({number(recall, 0)})</span>", True, row[j].best)
    per_class = ("<h3>Per-class IoU (recall) at the best threshold</h3>"
                 + table(["class", *(method_name(m) for m in methods)],
                         [[Cell(escape(c)), *r] for c, r in zip(classes, cells)]))
    body += grid(per_class, confounder_table(cams))
    return section("cams", "CAMs", body)


def confounder_table(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """Confounder false-positive rates (percent), one row per class/stuff pair, one column per method."""
    methods = [m for m in entries if entries[m].get("confounder_fp")]
    if not methods:
        return ""
    pairs = list(dict.fromkeys(p for m in methods for p in entries[m]["confounder_fp"]))
    values = [[entries[m]["confounder_fp"].get(p) for m in methods] for p in pairs]
    cells = numeric_cells(values, "min", "row", 1, "%")
    rows = [[Cell(name), *row] for name, row in zip(_pair_cells(pairs), cells)]
    return ("<h3>Confounder false positives</h3>"
            + table(["class on stuff", *(method_name(m) for m in methods)], rows)
            + '<p class="note">Share of a stuff\'s visible pixels, in images labelled with the class,<br>that the '
              "map labels as the class (a train map firing on railroad).<br>Lower is better.</p>")


def figures_section(figures: Sequence[ClassFigure], pictures: Mapping[str, Picture], method: str, baseline: str,
                    rows: int) -> str:
    shown = [f for f in figures if f.png is not None]
    if not shown:
        return ""
    body = (f'<p class="note">Rows are chosen by a fixed rule: among the train-split images labelled with the class '
            f"(and, with stuff masks, showing its stuff on at least {STUFF_MIN_SHARE:.0%} of the image), the {rows} "
            f"largest per-image IoU gains of {method_name(method)} over {method_name(baseline)} for that class, plus "
            f"the image at the median gain. Each CAM is thresholded at its method's best background threshold; pseudo "
            f"masks, where they were made, are shown as they are.</p>")
    for figure in figures:
        title = figure.class_name + (f" (on {figure.stuff})" if figure.stuff else "")
        body += f"<h3>{escape(title)}</h3>"
        if figure.png is None:
            body += f'<p class="note">No eligible image for {escape(figure.class_name)}.</p>'
            continue
        body += picture(pictures[f"figure_{figure.class_name}"])
    return section("figures", "Masks side by side (seed Figures 1 and 2)", body)


def masks_section(masks: Mapping[str, Mapping[str, Any]], bars: Picture | None) -> str:
    keys = list(masks)
    cam_methods = list(dict.fromkeys(k.partition("/")[0] for k in keys))
    refiners = list(dict.fromkeys(k.partition("/")[2] or "-" for k in keys))
    entries = [[masks.get(m if r == "-" else f"{m}/{r}") for r in refiners] for m in cam_methods]
    values = [[entry["miou"] if entry else None for entry in row] for row in entries]
    rows = [[Cell(method_name(m)), *cells] for m, cells in zip(cam_methods, numeric_cells(values))]
    body = "<h3>mIoU per CAM method and refiner</h3>" + table(
        ["CAM method", *(REFINER_NAMES.get(r, r) for r in refiners)], rows)
    if bars:
        body += picture(bars)
    body += confounder_table(masks)
    return section("masks", "Pseudo masks", body)


def seg_section(seg: Mapping[str, Mapping[str, Any]], published: Sequence[PublishedRow],
                examples: Picture | None = None) -> str:
    runs = list(seg)
    values = [[seg[r]["miou"]] for r in runs]
    rows: list[list[Cell | str]] = []
    for run, cells in zip(runs, numeric_cells(values)):
        label = f"{escape(seg_run_label(run))} <span class=\"muted\">({escape(run)})</span>"
        rows.append([Cell(label), Cell(number(seg[run].get("pixel_labeled")), True),
                     Cell(number(seg[run].get("image_labeled")), True), *cells, Cell("this run")])
    for row in published:
        rows.append([Cell(f"{escape(row.method)}<span class=\"badge\">published</span>"),
                     Cell(escape(row.pixel_level), True), Cell(escape(row.image_level), True),
                     Cell(number(row.val_miou), True), Cell(escape(row.note))])
    classes = ["published" if i >= len(runs) else "" for i in range(len(rows))]
    body = table(["run", "pixel-labeled images", "image-labeled images", "val mIoU", "source"], rows, classes)
    body += ('<p class="note">Published rows are the papers\' figures on PASCAL VOC 2012 val; on another dataset '
             "(the demo world) compare the runs of this table with each other, not with them.</p>")
    per_class = [r for r in runs if seg[r].get("per_class")]
    if per_class:
        classes_ = list(dict.fromkeys(c for r in per_class for c in seg[r]["per_class"]))
        values = [[seg[r]["per_class"].get(c) for r in per_class] for c in classes_]
        rows = [[Cell(escape(c)), *cells] for c, cells in zip(classes_, numeric_cells(values, per="row"))]
        body += "<h3>Per-class IoU on val</h3>" + table(["class", *per_class], rows)
    if examples is not None:
        body += "<h3>Segmented val images</h3>" + picture(examples)
    return section("seg", "Segmentation (seed Table 1)", body)


def provenance_section(provenance: Mapping[str, Any], timings: Mapping[str, float], dataset: Mapping[str, Any]) -> str:
    body = "<h3>Code and dataset</h3>"
    rows = [("code version", f"<code>{escape(provenance.get('code_version', '–'))}</code>")]
    rows += [(key, escape(value)) for key, value in dataset.items()]
    body += key_value_table(rows)
    artifacts = provenance.get("artifacts", [])
    artifacts = list(artifacts.items()) if isinstance(artifacts, Mapping) else artifacts  # [name, folder] pairs
    if artifacts:
        rows = [[escape(name), Cell(f"<code>{escape(path)}</code>")] for name, path in artifacts]
        body += "<h3>Artifacts (folders are keyed by tags)</h3>" + table(["artifact", "folder"], rows)
    if timings:
        total = sum(timings.values())
        rows = [[Cell(escape(rule)), Cell(number(float(s)), True), Cell(_clock(s), True)]
                for rule, s in timings.items()]
        rows.append([Cell("<b>total</b>"), Cell(f"<b>{number(total)}</b>", True),
                     Cell(f"<b>{_clock(total)}</b>", True)])
        body += "<h3>Wall time per rule</h3>" + table(["rule", "seconds", "h:mm:ss"], rows)
        body += '<p class="note">From each rule\'s Snakemake benchmark file; jobs may have run in parallel.</p>'
    config = provenance.get("config")
    if config is not None:
        body += ("<details><summary>Resolved config (defaults filled in)</summary><pre>"
                 f"{escape(json.dumps(config, indent=2, sort_keys=True))}</pre></details>")
    return section("provenance", "Run provenance", body)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


TITLES = {"glance": "At a glance", "trunk": "Trunk", "clip": "CLIP", "cams": "CAMs", "figures": "Figures", "masks": "Pseudo masks",
          "seg": "Segmentation", "provenance": "Provenance"}


def page(sections: Mapping[str, str], subtitle: str) -> str:
    """The whole document from rendered sections (id -> HTML; empty ones are dropped)."""
    present = {key: body for key, body in sections.items() if body}
    nav = "".join(f'<a href="#{key}">{escape(TITLES.get(key, key))}</a>' for key in present)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>CLIMS results report</title>"
            f"<style>{CSS}</style></head><body>"
            f"<header><h1>CLIMS results report</h1><p>{subtitle}</p></header>"
            f"<nav>{nav}</nav><main>{''.join(present.values())}</main></body></html>\n")
