"""`meshkit diff --base REV`: classify every contract change since REV and gate on the version bump.

Exit 1 when a contract changed without the semantic-version bump its changes require (or could not
be compared); governance-relevant changes are listed as needing approval but do not fail the gate.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from meshkit.cli._common import settings_from

if TYPE_CHECKING:
    from governance.diff import ContractDiff, MeshDiff


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, metavar="REV", help="git revision to compare with, e.g. origin/main")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def _value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def render_contract(diff: ContractDiff) -> list[str]:
    head = f"{diff.ref}: {diff.status}"
    if diff.error:
        return [f"{head}: {diff.error}"]
    lines = [head]
    for change in diff.changes:
        lines.append(f"  {change.kind:<12} {change.code:<28} {change.message}")
        if change.old is not None or change.new is not None:
            lines.append(f"  {'':<12} {'':<28} {change.field}: {_value(change.old)} → {_value(change.new)}")
    if diff.version is not None and diff.status == "changed":
        mark = "ok  " if diff.version.ok else "FAIL"
        lines.append(f"  {mark} {diff.version.message}")
        if diff.suggestion:
            lines.append(f"  hint: set `version: {diff.suggestion}` in {diff.path}")
    return lines


def render_text(mesh: MeshDiff) -> str:
    lines = [f"Contracts compared with {mesh.base} ({mesh.commit[:12]}):"]
    changed = [d for d in mesh.contracts if d.status != "unchanged"]
    for diff in changed:
        lines.extend(render_contract(diff))
    failing = [d.ref for d in mesh.contracts if not d.ok]
    unchanged = len(mesh.contracts) - len(changed)
    lines.append(
        f"{len(changed)} changed, {unchanged} unchanged; "
        + (f"missing version bump: {', '.join(failing)}" if failing else "every version bump covers its changes")
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from governance.diff import diff_mesh

    settings = settings_from(args)
    mesh = diff_mesh(settings.root, args.base, settings.domains_dir)
    if args.format == "json":
        print(json.dumps(mesh.to_dict(), indent=2, default=str))
    else:
        print(render_text(mesh))
    return 0 if mesh.ok else 1
