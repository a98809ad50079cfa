"""The report's config keys: defaults from the schema, cross-key checks naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clims_core.config import ConfigError, validate_config

DEMO = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "config.yaml").read_text())


def test_report_defaults_and_demo_values():
    filled = validate_config({key: value for key, value in DEMO.items() if key != "report"})
    assert filled["report"] == {"figure_classes": None, "figure_rows": 3, "figure_baseline": None}
    assert validate_config(DEMO)["report"]["figure_classes"] == ["train", "boat", "person"]


@pytest.mark.parametrize(("report", "message"), [
    ({"figure_classes": ["train", "unicorn"]}, r"key 'report.figure_classes': \['unicorn'\] not in data.classes"),
    ({"figure_baseline": "lion"}, r"config key 'report.figure_baseline': expected one of"),
    ({"figure_rows": 0}, r"config key 'report.figure_rows'"),
])
def test_bad_report_settings_are_named(report, message):
    with pytest.raises(ConfigError, match=message):
        validate_config({**DEMO, "report": report})


def test_baseline_must_have_run():
    config = {**DEMO, "cam": {**DEMO["cam"], "methods": ["cam", "clims"]}, "report": {"figure_baseline": "puzzlecam"}}
    with pytest.raises(ConfigError, match="config key 'report.figure_baseline': 'puzzlecam' is not in cam.methods"):
        validate_config(config)
