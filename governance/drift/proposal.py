"""The contract change that accommodates drift, as line edits of `datacontract.yaml` (so the diff shows
only what changed, comments and layout kept) and the version bump governance/diff requires for it."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from governance.diff import diff_contracts
from governance.diff.semver import parse_version, required_bump, suggested_version
from governance.drift.compare import WIDENINGS, accepted_kinds, infer_type
from governance.drift.model import REQUIRED_SHARE, ContractProposal, DriftFinding
from governance.validation.contract_semantics import looks_personal
from meshkit.contracts.model import Contract, parse_contract
from meshkit.yamlio import parse_yaml

MARK = "# meshkit drift:"


@dataclass(frozen=True)
class LineEdit:
    """Replace lines [start, end) (0-based) of the contract with `lines`; start == end inserts."""

    start: int
    end: int
    lines: tuple[str, ...]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _scalar(value: object) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def _properties_end(lines: Sequence[str], item_line: int) -> int:
    """The index after the last line of the property list item starting at `item_line` (0-based)."""
    indent = _indent(lines[item_line])
    end = item_line + 1
    for i in range(item_line + 1, len(lines)):
        text = lines[i].strip()
        if not text or text.startswith("#"):
            continue
        if _indent(lines[i]) <= indent:
            break
        end = i + 1
    return end


def _new_property(finding: DriftFinding, indent: int) -> list[str]:
    assert finding.column is not None
    inferred = infer_type(finding.kinds)
    required = finding.documents > 0 and (finding.present - finding.kinds.get("null", 0)) >= (
        REQUIRED_SHARE * finding.documents
    )
    personal = looks_personal(finding.column)
    pad, key = " " * indent, " " * (indent + 2)
    out = [
        f"{pad}{MARK} new field {finding.field!r}, present in {finding.present:,} of {finding.documents:,} "
        "profiled documents; review its type, classification and personal data",
        f"{pad}- name: {finding.column}",
        f"{key}logicalType: {inferred.logical}",
    ]
    if inferred.options:
        out.append(f"{key}logicalTypeOptions:")
        out += [f"{key}  {k}: {_scalar(v)}" for k, v in inferred.options.items()]
    if inferred.physical:
        out.append(f"{key}physicalType: {inferred.physical}")
    out.append(f"{key}required: {_scalar(required)}")
    out.append(f"{key}classification: {'restricted' if personal else 'internal'}")
    custom: list[tuple[str, object]] = [("sourceField", finding.field)] if finding.field != finding.column else []
    custom += [("personalData", True), ("masking", "hash")] if personal else []
    if custom:
        out.append(f"{key}customProperties:")
        for name, value in custom:
            out += [f"{key}  - property: {name}", f"{key}    value: {_scalar(value)}"]
    return out


def _edits(
    contract: Contract, lines: Sequence[str], findings: Sequence[DriftFinding], remove_vanished: bool
) -> list[LineEdit]:
    where = contract.document.lines
    index = {c.name: c.index for c in contract.columns}
    edits: list[LineEdit] = []
    for finding in findings:
        if finding.column is None or finding.column not in index or finding.proposed is None:
            continue
        base = f"schema[0].properties[{index[finding.column]}]"
        item = where[base] - 1
        pad = " " * _indent(lines[item])
        if finding.code == "field-vanished" and remove_vanished:
            edits.append(LineEdit(item, _properties_end(lines, item), ()))
        elif finding.code == "field-vanished":
            note = f"{pad}{MARK} field {finding.field!r} no longer appears ({finding.present:,} of "
            edits.append(LineEdit(item, item, (note + f"{finding.documents:,} profiled documents)",)))
        elif finding.code == "type-changed":
            column = contract.columns[index[finding.column]]
            bad = frozenset(k for k in finding.kinds if k != "null" and k not in accepted_kinds(column))
            widened = WIDENINGS.get((column.logical_type, bad))
            if widened is None:
                note = f"{pad}{MARK} {finding.field!r} also arrives as {', '.join(sorted(bad))}; fix the producer"
                edits.append(LineEdit(item, item, (note,)))
                continue
            logical, physical, options = widened
            for key, value in (("logicalType", logical), ("physicalType", physical)):
                at = where.get(f"{base}.{key}")
                if at is not None:
                    line = lines[at - 1]
                    edits.append(LineEdit(at - 1, at, (f"{line[: _indent(line)]}{key}: {value}",)))
            missing = {k: v for k, v in options.items() if f"{base}.logicalTypeOptions.{k}" not in where}
            if missing and f"{base}.logicalTypeOptions" in where:
                at = where[f"{base}.logicalTypeOptions"]
                opt_pad = " " * (_indent(lines[at - 1]) + 2)
                edits.append(LineEdit(at, at, tuple(f"{opt_pad}{k}: {_scalar(v)}" for k, v in missing.items())))
            elif missing and f"{base}.logicalType" in where:
                at = where[f"{base}.logicalType"]
                key_pad = lines[at - 1][: _indent(lines[at - 1])]
                block = [
                    f"{key_pad}logicalTypeOptions:",
                    *(f"{key_pad}  {k}: {_scalar(v)}" for k, v in missing.items()),
                ]
                edits.append(LineEdit(at, at, tuple(block)))
        elif finding.code == "required-violated" and f"{base}.required" in where:
            at = where[f"{base}.required"]
            line = lines[at - 1]
            edits.append(LineEdit(at - 1, at, (f"{line[: _indent(line)]}required: false",)))
    added = [f for f in findings if f.code == "field-added" and f.proposed is not None]
    if added:
        last = where[f"schema[0].properties[{len(contract.columns) - 1}]"] - 1
        end = _properties_end(lines, last)
        new: list[str] = []
        for finding in added:
            new += _new_property(finding, _indent(lines[last]))
        edits.append(LineEdit(end, end, tuple(new)))
    return edits


def _apply(lines: Sequence[str], edits: Sequence[LineEdit]) -> list[str]:
    out = list(lines)
    # bottom-up so earlier line numbers stay valid; at one line, replacements before insertions
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        out[edit.start : edit.end] = edit.lines
    return out


def _set_version(contract: Contract, lines: list[str], version: str) -> list[str]:
    at = contract.document.lines.get("version")
    if at is None:
        return lines
    line = lines[at - 1]
    return [*lines[: at - 1], f"{line[: _indent(line)]}version: {version}", *lines[at:]]


def propose(
    contract: Contract, findings: Sequence[DriftFinding], relpath: str, *, remove_vanished: bool = False
) -> ContractProposal | None:
    """The proposed contract as a unified diff (None when nothing would change), with the bump that
    governance/diff's classifier requires for it: the proposal is applied to a copy, classified
    against the current contract, and its version set to the suggestion."""
    text = contract.path.read_text(encoding="utf-8")
    lines = text.splitlines()
    edits = _edits(contract, lines, findings, remove_vanished)
    if not edits:
        return None
    changed = _apply(lines, edits)
    copy = parse_contract(parse_yaml("\n".join(changed) + "\n", Path(f"{contract.path} (proposed)")))
    bump = required_bump(diff_contracts(relpath, contract, copy).changes)
    before = parse_version(contract.version)
    if bump == "major" and before is not None and before[0] == 0:
        bump = "minor"  # 0.y.z: governance/diff accepts a minor bump for a breaking change
    version = suggested_version(contract.version, bump) or contract.version
    final = _set_version(contract, changed, version)
    proposed = parse_contract(parse_yaml("\n".join(final) + "\n", Path(f"{contract.path} (proposed)")))
    checked = diff_contracts(relpath, contract, proposed)
    diff = "".join(
        difflib.unified_diff(
            [f"{line}\n" for line in lines], [f"{line}\n" for line in final], fromfile=relpath, tofile=relpath
        )
    )
    return ContractProposal(relpath, diff, contract.version, version, bump, tuple(c.to_dict() for c in checked.changes))
