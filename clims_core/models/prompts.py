"""Text prompts built from class and stuff names (the words CLIP is asked about)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def display_name(name: str, mapping: Mapping[str, str] | None = None) -> str:
    """The words for a class id, e.g. ``diningtable`` -> ``dining table`` through the config's mapping."""
    return (mapping or {}).get(name, name.replace("_", " "))


def fill(template: str, name: str) -> str:
    """``"a photo of {article} {name}."`` with ``name`` and its article filled in."""
    return template.format(name=name, article=article(name))


def label_text(names: Sequence[str], template: str = "a photo of {names}.") -> str:
    """The fine-tuning text of an image's label set: ``a photo of cat, dog and train.``"""
    names = list(names)
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return template.format(names=joined)
