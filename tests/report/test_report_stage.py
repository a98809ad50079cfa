"""The report stage on real stage outputs (eval_cams on synthetic CAM stores of the tiny world): sections follow what
ran, every picture is embedded and written beside the page, published rows are marked, bad settings are named."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from clims_core.data.manifest import Manifest
from clims_core.io.masks import load_mask, save_mask
from clims_core.report.seg_runs import PUBLISHED_ROWS
from clims_core.report.summary import write_summary
from clims_core.stages import eval_cams
from clims_core.stages.report import ReportSettings, figure_mask_dirs, in_pipeline_order, resolve_baseline, run
from tests.report.stores import write_store

CONFOUNDERS = {"train": "railroad", "boat": "water"}


class PageParser(HTMLParser):
    """Sections with the tables and images inside each; every image source; every table row's class."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, int]] = {}
        self.current: str | None = None
        self.sources: list[str] = []
        self.published_rows: int = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "section":
            self.current = attrs["id"]
            self.sections[self.current] = {"table": 0, "img": 0}
        elif tag in ("table", "img") and self.current:
            self.sections[self.current][tag] += 1
        if tag == "img":
            self.sources.append(attrs["src"])
        if tag == "tr" and attrs.get("class") == "published":
            self.published_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.current = None


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def stage_outputs(tiny_world: dict, tmp_path_factory) -> dict:
    """CAM stores of three methods (CLIMS exact, the baselines cut off at different rows) and their eval JSONs."""
    manifest = Manifest.load(tiny_world["manifest"])
    out = tmp_path_factory.mktemp("report_inputs")
    ids = [item["id"] for item in manifest.splits["train"]]
    cuts = {"cam": {i: 8 * (n % 6) for n, i in enumerate(ids)}, "puzzlecam": {i: 40 for i in ids}, "clims": None}
    stores, evals = {}, {}
    for method, keep in cuts.items():
        stores[method] = write_store(out / f"{method}.h5", manifest, "train", keep)
        evals[method] = out / f"{method}.json"
        eval_cams.run(eval_cams.EvalCamsSettings(confounders=CONFOUNDERS), tiny_world["manifest"], stores[method],
                      evals[method], out / f"{method}.tsv", out / f"{method}.png", method)
    return {"manifest": tiny_world["manifest"], "stores": stores, "evals": evals, "dir": out}


def _report(stage_outputs: dict, tmp_path: Path, settings: ReportSettings | None = None, seg_examples=None,
            **summary_inputs) -> tuple:
    summary = tmp_path / "summary.json"
    write_summary(summary, **summary_inputs)
    html_path, figures = tmp_path / "report" / "index.html", tmp_path / "report" / "figures"
    sections = run(settings or ReportSettings(confounders=CONFOUNDERS), summary, stage_outputs["manifest"],
                   stage_outputs["stores"], html_path, figures, seg_examples=seg_examples)
    return sections, html_path, figures


def test_cam_only_run(stage_outputs: dict, tmp_path: Path):
    provenance = {"code_version": "0.1.0+test", "artifacts": [["manifest", "results/data/x"]], "config": {"seed": 0}}
    sections, html_path, figures = _report(stage_outputs, tmp_path, cam_evals=stage_outputs["evals"],
                                           provenance=provenance)
    page = parse(html_path)
    assert sections == list(page.sections) == ["glance", "cams", "figures", "provenance"]  # no CLIP, masks, seg
    for name, counts in page.sections.items():
        assert counts["table"] + counts["img"] > 0, name
    assert page.sections["cams"]["img"] == 2 and page.sections["figures"]["img"] == 2  # train and boat
    written = {p.name: p.read_bytes() for p in figures.iterdir()}
    assert set(written) == {"cam_threshold_curves.png", "cam_per_class_iou.png", "figure_train.png", "figure_boat.png"}
    embedded = [base64.b64decode(src.removeprefix("data:image/png;base64,")) for src in page.sources]
    assert all(src.startswith("data:image/png;base64,") for src in page.sources)
    assert sorted(embedded) == sorted(written.values())
    assert all(Image.open(io.BytesIO(png)).format == "PNG" for png in embedded)
    text = html_path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "0.1.0+test" in text and "results/data/x" in text
    assert page.published_rows == 0  # no segmentation ran: no Table 1


def test_masks_and_seg_sections_with_published_rows(stage_outputs: dict, tmp_path: Path):
    seg = tmp_path / "seg.json"
    seg.write_text(json.dumps({"run": "cct_weak_clims", "miou": 63.25, "per_class": {"train": {"iou": 60.0}},
                               "pixel_labeled": 40, "image_labeled": 160}))
    sections, html_path, _ = _report(stage_outputs, tmp_path, cam_evals={"cam": stage_outputs["evals"]["cam"]},
                                     mask_evals={"cam/irn": stage_outputs["evals"]["clims"]},
                                     seg_evals={"cct_weak_clims": seg})
    page = parse(html_path)
    assert sections == ["glance", "cams", "masks", "seg", "provenance"]  # no CLIMS CAMs: no figures
    assert page.sections["masks"]["table"] >= 1 and page.sections["seg"]["table"] >= 1
    assert page.published_rows == len(PUBLISHED_ROWS) == 4
    text = html_path.read_text(encoding="utf-8")
    assert "63.2" in text and "76.9" in text and "73.2" in text and "69.3" in text and "Table 1" in text
    assert "CCT + CLIMS pseudo masks" in text  # the run's Table 1 name


def test_baseline_and_bad_settings(stage_outputs: dict, tmp_path: Path):
    assert resolve_baseline(ReportSettings(), ["cam", "puzzlecam", "clims"]) == "puzzlecam"
    assert resolve_baseline(ReportSettings(), ["cam", "clims"]) == "cam"
    assert resolve_baseline(ReportSettings(figure_baseline="cam"), ["cam", "puzzlecam", "clims"]) == "cam"
    with pytest.raises(ValueError, match="report.figure_baseline: 'puzzlecam' is not a CAM method"):
        resolve_baseline(ReportSettings(figure_baseline="puzzlecam"), ["cam", "clims"])
    with pytest.raises(ValueError, match=r"report.figure_classes: \['unicorn'\] not in the dataset's classes"):
        _report(stage_outputs, tmp_path, ReportSettings(figure_classes=("unicorn",)), cam_evals=stage_outputs["evals"])
    assert not (tmp_path / "report" / "index.html").exists()


def test_pipeline_order():
    summary = {"cams": {"clims": 1, "cam": 2, "puzzlecam": 3}, "masks": {"clims/irn": 1, "cam/irn": 2},
               "seg": {"deeplab_clims": 0, "cct_weak_clims": 1, "deeplab_cam": 4, "cct_labeled": 2, "cct_weak_cam": 3},
               "timings_s": {"eval_cams_cam": 1, "train_cam_clims": 2, "make_demo_world": 3, "zeta": 4}}
    ordered = in_pipeline_order(summary)
    assert list(ordered["cams"]) == ["cam", "puzzlecam", "clims"] and list(ordered["masks"]) == ["cam/irn", "clims/irn"]
    assert list(ordered["seg"]) == ["cct_labeled", "cct_weak_cam", "cct_weak_clims", "deeplab_cam", "deeplab_clims"]
    assert list(ordered["timings_s"]) == ["make_demo_world", "train_cam_clims", "eval_cams_cam", "zeta"]


def test_pseudo_mask_columns_pick_one_refiner_per_method():
    dirs = {"cam/crf": "a", "cam/irn": "b", "clims/crf": "c", "puzzlecam/irn": "d", "clims/zz": "e"}
    assert figure_mask_dirs(dirs, "cam") == {"cam/irn": Path("b"), "clims/crf": Path("c")}
    assert figure_mask_dirs(dirs, "puzzlecam") == {"puzzlecam/irn": Path("d"), "clims/crf": Path("c")}
    assert figure_mask_dirs({}, "cam") == {}


def test_trunk_section_from_pretrain_trunks_metrics(stage_outputs: dict, tmp_path: Path):
    metrics = tmp_path / "trunk.json"
    metrics.write_text(json.dumps({"heldout_map": {"before": 24.83, "after": 94.2}, "loss_per_epoch": [0.4, 0.2, 0.1],
                                   "heldout_ap_per_word": {"before": {"train": 21.8, "sky": 43.2},
                                                           "after": {"train": 99.2, "sky": 78.8}}, "pairs": 3000}))
    sections, html_path, _ = _report(stage_outputs, tmp_path, cam_evals={"cam": stage_outputs["evals"]["cam"]},
                                     trunk_metrics=metrics)
    assert sections[:3] == ["glance", "trunk", "cams"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["trunk"] == {"heldout_map": {"before": 24.83, "after": 94.2}, "epochs": 3, "pairs": 3000,
                                "heldout_ap_per_word": {"before": {"train": 21.8, "sky": 43.2},
                                                        "after": {"train": 99.2, "sky": 78.8}}}
    page = parse(html_path)
    assert page.sections["trunk"]["table"] == 1
    text = html_path.read_text(encoding="utf-8")
    assert "before 24.8, after 94.2" in text and "99.2" in text and "3 epochs" in text


def test_seg_section_shows_segmented_val_images_beside_the_ground_truth(stage_outputs: dict, tmp_path: Path):
    manifest = Manifest.load(stage_outputs["manifest"])
    seg, examples = {}, {}
    for name in ("cct_weak_clims", "deeplab_clims"):
        seg[name] = tmp_path / f"{name}.json"
        seg[name].write_text(json.dumps({"run": name, "miou": 50.0, "pixel_labeled": 0, "image_labeled": 160}))
        examples[name] = tmp_path / f"{name}-examples"
        examples[name].mkdir()
        for image_id in manifest.ids("val")[:2]:  # eval_seg's first val images; here their ground truth
            save_mask(examples[name] / f"{image_id}.png", load_mask(manifest.mask_path("val", image_id)))
    examples["cct_labeled"] = tmp_path / "not-in-the-summary"  # a folder of a run the summary lacks: left out
    sections, html_path, figures = _report(stage_outputs, tmp_path, seg_examples=examples, seg_evals=seg)
    page = parse(html_path)
    assert "seg" in sections and page.sections["seg"]["img"] == 1
    with Image.open(figures / "seg_val_examples.png") as picture:
        assert picture.height > picture.width / 4  # two rows of image | ground truth | two runs
    text = html_path.read_text(encoding="utf-8")
    assert "Segmented val images" in text and "DeepLabV2 on CLIMS pseudo masks alone" in text
