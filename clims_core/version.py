"""Code versions recorded in artifacts and passed to rules as params (Snakemake reruns a stage when its code changes).

``code_version()`` covers the whole library (for provenance); ``stage_code_version(module)`` covers only one stage's
module and the ``clims_core`` modules it imports, directly or not, so editing one stage replans that stage alone.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

from clims_core import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(file: Path) -> set[str]:
    """Absolute ``clims_core`` modules named by the import statements of a source file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == PACKAGE}


def module_closure(module: str) -> list[Path]:
    """Source files of ``module`` and of every ``clims_core`` module it imports, transitively (sorted)."""
    seen: set[Path] = set()
    stack = [module]
    while stack:
        file = _module_file(stack.pop())
        if file is None or file in seen:
            continue
        seen.add(file)
        stack.extend(_imported_modules(file))
    return sorted(seen)


def source_hash(paths: list[Path] | None = None, length: int = 10) -> str:
    """Short SHA-256 over source files (default: every ``.py`` file of the package)."""
    files = sorted(paths if paths is not None else PACKAGE_DIR.rglob("*.py"))
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(PACKAGE_DIR)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:length]


@functools.cache
def code_version() -> str:
    """``<version>+<hash of the whole library>``, recorded in every artifact."""
    return f"{__version__}+{source_hash()}"


@functools.cache
def stage_code_version(module: str, *imported_by_name: str) -> str:
    """``<version>+<hash of one stage's code closure>``, the rerun trigger a rule carries in its params.

    ``imported_by_name``: modules the stage imports at run time by name (``train_cam``'s method module), whose
    closures join the stage's; a static import would put every method's code into every method's trigger."""
    files: set[Path] = set()
    for name in (module, *imported_by_name):
        found = module_closure(name)
        if not found:
            raise ValueError(f"unknown library module {name!r}")
        files.update(found)
    return f"{__version__}+{source_hash(sorted(files))}"
