"""Classify what changed between two versions of one contract: breaking, non-breaking or governance.

Governance-relevant changes (classification downgraded, masking weakened, role widened, retention
shortened, SLA loosened, source moved) break no reader's query, yet other tools report them as mere
information; here they need a version bump and a governance approval.
"""

from __future__ import annotations

from typing import Any

from governance.diff.avro import avro_changes
from governance.diff.columns import column_changes
from governance.diff.model import DOCS_ONLY_CODES, Change, ChangeKind, worst
from meshkit.contracts.model import Contract, custom_properties

__all__ = ["DOCS_ONLY_CODES", "Change", "ChangeKind", "classify", "worst"]

_ACCESS_RANK = {"read": 0, "write": 1, "readwrite": 1, "admin": 2}
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
    "mo": 2592000,
    "month": 2592000,
    "months": 2592000,
    "y": 31536000,
    "yr": 31536000,
    "year": 31536000,
    "years": 31536000,
}
# SLA property -> +1 when a larger value is a stronger promise, -1 when it is a weaker one
_SLA_DIRECTION = {
    "availability": 1,
    "retention": 1,
    "latency": -1,
    "frequency": -1,
    "errorrate": -1,
    "timeofavailability": -1,
    "generalavailability": 0,
    "completeness": 1,
    "freshness": -1,  # aliases as docs/slo.md reads them
    "ly": -1,
    "fy": -1,
    "er": -1,
    "rt": 1,
}
_PERCENTAGES = frozenset({"availability", "errorrate", "er", "completeness"})


def classify(old: Contract, new: Contract) -> list[Change]:
    """Every difference between two versions of a contract that a consumer or governance cares about."""
    changes: list[Change] = []
    changes += _table_changes(old, new)
    changes += column_changes(old, new)
    changes += _key_changes(old, new)
    changes += _role_changes(old, new)
    changes += _sla_changes(old, new)
    changes += _server_changes(old, new)
    changes += _description_changes(old, new)
    changes += avro_changes(old, new, covered=changes)
    return changes


def _table_changes(old: Contract, new: Contract) -> list[Change]:
    if old.table_name != new.table_name:
        return [
            Change(
                "breaking",
                "table-renamed",
                "schema[0].physicalName",
                old.table_name,
                new.table_name,
                f"table renamed from {old.table_name!r} to {new.table_name!r}; consumers' queries break",
            )
        ]
    return []


def _key_changes(old: Contract, new: Contract) -> list[Change]:
    if old.primary_key == new.primary_key:
        return []
    return [
        Change(
            "breaking",
            "primary-key-changed",
            "schema[0].properties",
            list(old.primary_key),
            list(new.primary_key),
            f"primary key {list(old.primary_key)} -> {list(new.primary_key)}; "
            "MERGE keys, de-duplication and joins change",
        )
    ]


def _role_changes(old: Contract, new: Contract) -> list[Change]:
    before = {r.role: r for r in old.odcs.roles or () if r.role}
    after = {r.role: r for r in new.odcs.roles or () if r.role}
    changes: list[Change] = []
    for i, role in enumerate(new.odcs.roles or ()):
        name, access = role.role, (role.access or "read").lower()
        if not name:
            continue
        field = f"roles[{i}]"
        if name not in before:
            changes.append(
                Change(
                    "governance",
                    "role-added",
                    field,
                    None,
                    f"{name} ({access})",
                    f"new role {name!r} with {access} access",
                )
            )
            continue
        old_access = (before[name].access or "read").lower()
        if _ACCESS_RANK.get(access, 3) > _ACCESS_RANK.get(old_access, 0):
            changes.append(
                Change(
                    "governance",
                    "role-widened",
                    f"{field}.access",
                    old_access,
                    access,
                    f"role {name!r} widened from {old_access} to {access}",
                )
            )
        approvers = ("firstLevelApprovers", "secondLevelApprovers")
        for key in approvers:
            was, now = getattr(before[name], key), getattr(role, key)
            if was and not now:
                changes.append(
                    Change(
                        "governance",
                        "approver-removed",
                        f"{field}.{key}",
                        was,
                        None,
                        f"role {name!r} no longer needs approval by {was}",
                    )
                )
    for name in before:
        if name not in after:
            changes.append(
                Change(
                    "breaking",
                    "role-removed",
                    "roles",
                    name,
                    None,
                    f"role {name!r} removed; principals holding it lose access",
                )
            )
    return changes


def _seconds(value: Any, unit: str | None) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if unit is None:
        return number
    factor = _UNIT_SECONDS.get(unit.strip().lower())
    return number * factor if factor else None


def _sla_value(prop: Any) -> float | None:
    name = (prop.property or "").lower()
    if name in _PERCENTAGES:
        try:
            return float(prop.value)
        except (TypeError, ValueError):
            return None
    return _seconds(prop.value, prop.unit)


def _sla_changes(old: Contract, new: Contract) -> list[Change]:
    before, after = old.sla, new.sla
    index = {p.property: i for i, p in enumerate(new.odcs.slaProperties or ()) if p.property}
    changes: list[Change] = []
    for name in sorted(set(before) | set(after)):
        was, now = before.get(name), after.get(name)
        shown_old = f"{was.value} {was.unit or ''}".strip() if was else None
        shown_new = f"{now.value} {now.unit or ''}".strip() if now else None
        if shown_old == shown_new:
            continue
        field = f"slaProperties[{index[name]}]" if name in index else "slaProperties"
        direction = _SLA_DIRECTION.get(name.lower(), 0)
        if now is None:
            changes.append(Change("governance", "sla-removed", field, shown_old, None, f"SLA {name} removed"))
            continue
        if was is None:
            changes.append(Change("non-breaking", "sla-added", field, None, shown_new, f"SLA {name} added"))
            continue
        a, b = _sla_value(was), _sla_value(now)
        # incomparable units or values count as weaker: a person has to look
        weaker = True if a is None or b is None or direction == 0 else (b - a) * direction < 0
        code = (
            ("retention-shortened" if name.lower() in {"retention", "rt"} else "sla-loosened")
            if weaker
            else "sla-tightened"
        )
        kind: ChangeKind = "governance" if weaker else "non-breaking"
        changes.append(Change(kind, code, field, shown_old, shown_new, f"SLA {name} {shown_old} -> {shown_new}"))
    return changes


def _server_view(server: Any) -> dict[str, Any]:
    data = server.model_dump(exclude_none=True, exclude={"description", "customProperties"})
    data.update(custom_properties(server.customProperties))
    return data


def _server_changes(old: Contract, new: Contract) -> list[Change]:
    before = {s.server: _server_view(s) for s in old.odcs.servers or ()}
    after = {s.server: _server_view(s) for s in new.odcs.servers or ()}
    changes: list[Change] = []
    for i, server in enumerate(new.odcs.servers or ()):
        name = server.server
        if name not in before:
            changes.append(
                Change(
                    "governance",
                    "server-added",
                    f"servers[{i}]",
                    None,
                    name,
                    f"server {name!r} added; data may now flow to or from it",
                )
            )
            continue
        diff = sorted(k for k in set(before[name]) | set(after[name]) if before[name].get(k) != after[name].get(k))
        if diff:
            shown = ", ".join(f"{k} {before[name].get(k)!r} -> {after[name].get(k)!r}" for k in diff)
            changes.append(
                Change(
                    "governance",
                    "server-changed",
                    f"servers[{i}]",
                    {k: before[name].get(k) for k in diff},
                    {k: after[name].get(k) for k in diff},
                    f"server {name!r} changed: {shown}",
                )
            )
    for name in before:
        if name not in after:
            changes.append(Change("governance", "server-removed", "servers", name, None, f"server {name!r} removed"))
    return changes


def _description_changes(old: Contract, new: Contract) -> list[Change]:
    a = old.odcs.description.model_dump(exclude_none=True) if old.odcs.description else {}
    b = new.odcs.description.model_dump(exclude_none=True) if new.odcs.description else {}
    if a == b and (old.table.description or "") == (new.table.description or ""):
        return []
    return [Change("non-breaking", "description-changed", "description", None, None, "descriptions changed")]
