"""The workflow passes Snakemake's own linter: every rule has a software environment (environment.yml), no rule file
mixes rules and functions (the plan lives in workflow/plan/), no undeclared environment variables."""

from __future__ import annotations

import re

from tests.e2e.workflow import REPO, demo_config_with, snakemake


def test_snakemake_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, demo_config_with(), "--lint")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Lints for" not in output, output[-3000:]


def test_rule_files_hold_rules_only_and_plan_files_no_rules():
    rule = re.compile(r"^\s*rule \w+:", re.MULTILINE)
    function = re.compile(r"^\s*def \w+\(", re.MULTILINE)
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        assert rule.search(text) and not function.search(text), path
        assert "conda:" in text, path
    for path in sorted((REPO / "workflow" / "plan").glob("*.smk")):
        assert not rule.search(path.read_text()), path
