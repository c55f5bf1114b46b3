"""Any Terraform folder, parsed with python-hcl2 into blocks with their file and line.

Parse errors become `infra.parse` checks (results, not exceptions): one broken file must not hide
the findings of the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshkit.checks import Check, Status
from meshkit.errors import ConfigError

SKIPPED_DIRS = frozenset({".terraform", ".git", "node_modules"})


@dataclass(frozen=True)
class TerraformBlock:
    """One `resource`, `data`, `module` or `variable` block."""

    kind: str  # resource | data | module | variable
    type: str  # resource/data type; "" for module and variable
    name: str
    body: dict[str, Any]
    file: str
    line: int | None

    @property
    def address(self) -> str:
        prefix = {"resource": "", "data": "data.", "module": "module.", "variable": "var."}[self.kind]
        return f"{prefix}{self.type + '.' if self.type else ''}{self.name}"


@dataclass(frozen=True)
class TerraformFolder:
    """Every block of every `.tf` file under a folder (sub-folders included, `.terraform` skipped)."""

    root: Path
    blocks: tuple[TerraformBlock, ...]
    problems: tuple[Check, ...] = field(default=())

    def of(self, kind: str, *types: str) -> Iterator[TerraformBlock]:
        return (b for b in self.blocks if b.kind == kind and (not types or b.type in types))

    def variable(self, name: str, near: str) -> TerraformBlock | None:
        """The variable `name` declared in the same folder as the file `near`."""
        folder = str(Path(near).parent)
        return next((b for b in self.of("variable") if b.name == name and str(Path(b.file).parent) == folder), None)


def _line(text: str, kind: str, labels: tuple[str, ...]) -> int | None:
    pattern = r"^[ \t]*" + re.escape(kind) + "".join(r'\s+"?' + re.escape(label) + r'"?' for label in labels) + r"\s*\{"
    match = re.search(pattern, text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _parse(path: Path, shown: str) -> tuple[list[TerraformBlock], Check | None]:
    import hcl2  # the maintained HCL2 parser (lark grammar); imported only by `infra check`
    from lark.exceptions import LarkError

    text = path.read_text(encoding="utf-8")
    options = hcl2.SerializationOptions(
        with_comments=False, explicit_blocks=False, preserve_heredocs=False, strip_string_quotes=True
    )
    try:
        data = hcl2.loads(text, serialization_options=options)
    except (LarkError, ValueError, RuntimeError) as exc:
        first = (str(exc).splitlines() or ["syntax error"])[0]
        return [], Check(
            "infra.parse",
            Status.ERROR,
            f"cannot parse {shown}: {first}",
            file=shown,
            hint="Fix the HCL syntax (`terraform fmt` points at the same line).",
        )
    blocks: list[TerraformBlock] = []
    for kind in ("resource", "data"):
        for entry in data.get(kind, []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    blocks.append(TerraformBlock(kind, rtype, name, body, shown, _line(text, kind, (rtype, name))))
    for kind in ("module", "variable"):
        for entry in data.get(kind, []):
            for name, body in entry.items():
                blocks.append(TerraformBlock(kind, "", name, body, shown, _line(text, kind, (name,))))
    return blocks, None


def load_folder(root: Path) -> TerraformFolder:
    """All `.tf` files under `root`; raises `ConfigError` only when `root` is not a folder of them."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder", hint="Give the folder that holds the stack's .tf files.")
    files = sorted(p for p in root.rglob("*.tf") if not SKIPPED_DIRS.intersection(p.relative_to(root).parts[:-1]))
    if not files:
        raise ConfigError(f"{root} holds no .tf files", hint="Point `meshkit infra check` at a Terraform folder.")
    blocks: list[TerraformBlock] = []
    problems: list[Check] = []
    for path in files:
        found, problem = _parse(path, str(path))
        blocks += found
        if problem:
            problems.append(problem)
    return TerraformFolder(root, tuple(blocks), tuple(problems))
