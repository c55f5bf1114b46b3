"""Dependencies between the four import packages point one way (docs/architecture.md):

    meshkit core  <-  monitoring  <-  pipelines
         ^                ^
         +--- governance -+          meshkit/cli reaches the others only inside its commands

Every import counts, wherever it is written (module level, inside a function, under
TYPE_CHECKING, relative, or `importlib.import_module("...")` with a literal name): a static
dependency is a dependency even when it is loaded late.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("meshkit", "pipelines", "governance", "monitoring")

# package (or sub-package) -> top-level packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "meshkit": ("pipelines", "governance", "monitoring"),  # the core; meshkit.cli is checked apart
    "monitoring": ("pipelines", "governance"),
    "pipelines": ("governance",),
}


@dataclass(frozen=True)
class Import:
    module: str  # the module that imports
    target: str  # the absolute module name imported
    file: Path
    line: int
    top_level: bool  # executed when the module is imported (not inside a function, not TYPE_CHECKING)

    def __str__(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}: {self.module} imports {self.target}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, top_level: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        deferred = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or (
            isinstance(child, ast.If) and _is_type_checking(child.test)
        )
        yield child, top_level and not deferred
        yield from _walk(child, top_level and not deferred)


def imports_of(path: Path) -> list[Import]:
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node, top in _walk(ast.parse(path.read_text(encoding="utf-8"), str(path)), top_level=True):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in {"import_module", "__import__"})
            )
        ):
            targets = [node.args[0].value]
        found += [Import(module, t, path, getattr(node, "lineno", 0), top) for t in targets if t]
    return found


def _all_imports() -> list[Import]:
    return [i for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")) for i in imports_of(path)]


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package):
    forbidden = FORBIDDEN[package]
    violations = [
        str(i)
        for i in _all_imports()
        if _in(i.module, package)
        and not _in(i.module, "meshkit.cli")
        and any(_in(i.target, other) for other in forbidden)
    ]
    assert violations == [], f"{package} must not import {', '.join(forbidden)}:\n" + "\n".join(violations)


def test_cli_reaches_the_other_packages_only_inside_its_commands():
    eager = [
        str(i)
        for i in _all_imports()
        if _in(i.module, "meshkit.cli") and i.top_level and any(_in(i.target, p) for p in PACKAGES[1:])
    ]
    assert eager == [], "import these inside the command's run() instead:\n" + "\n".join(eager)


def test_the_scanner_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The checks above are only as good as the scanner: feed it each form once."""
    package = tmp_path / "monitoring"
    package.mkdir()
    (package / "__init__.py").write_text("")
    probe = package / "probe.py"
    probe.write_text(
        "from __future__ import annotations\n"
        "import importlib\n"
        "from typing import TYPE_CHECKING\n"
        "import pipelines.sources.bus\n"
        "from governance.review import report\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from pipelines.product import ChangeFeedPipeline\n"
        "def late():\n"
        "    from governance.validation.products import validate\n"
        "    return importlib.import_module('pipelines.demo')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = {(i.target, i.top_level) for i in imports_of(probe)}
    assert {
        ("pipelines.sources.bus", True),
        ("governance.review", True),
        ("monitoring.sibling", True),
        ("pipelines.product", False),
        ("governance.validation.products", False),
        ("pipelines.demo", False),
    } <= found
