"""summary.json: benchmark seconds read from Snakemake's TSV, CLIP figures in percent, absent sections left out."""

from __future__ import annotations

import json

import pytest

from clims_core.report.summary import build_summary, read_benchmark_seconds


def test_benchmark_and_clip_sections(tmp_path):
    bench = tmp_path / "b.tsv"
    bench.write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t100\n13.5\t0:00:13\t100\n")
    assert read_benchmark_seconds(bench) == pytest.approx(13.0)
    clip_eval = tmp_path / "clip.json"
    clip_eval.write_text(json.dumps({"pretrained": {"zero_shot_map": 0.812, "stuff_test": {"object_accuracy": 0.95,
                                                                                           "stuff_accuracy": 0.9}}}))
    summary = build_summary(clip_eval=clip_eval, benchmarks={"eval_clip": bench})
    assert summary["clip"]["pretrained"]["zero_shot_map"] == pytest.approx(81.2)
    assert summary["clip"]["pretrained"]["stuff_test_stuff_accuracy"] == pytest.approx(90.0)
    assert summary["timings_s"] == {"eval_clip": 13.0}
    assert "cams" not in summary and build_summary() == {}


def test_bad_benchmark_file_is_named(tmp_path):
    (tmp_path / "x.tsv").write_text("nothing\n")
    with pytest.raises(ValueError, match="x.tsv: not a Snakemake benchmark TSV"):
        read_benchmark_seconds(tmp_path / "x.tsv")
