"""The README documents the config keys exactly as the schema defines them (no drift)."""

from __future__ import annotations

from pathlib import Path

from clims_core.config import schema_markdown

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_config_table_matches_schema():
    assert schema_markdown() in README.read_text(encoding="utf-8"), (
        "README's config table is stale: paste the output of `python -m clims_core.config`"
    )


def test_readme_names_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
