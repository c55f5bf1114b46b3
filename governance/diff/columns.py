"""Changes to the table's columns: removed, renamed, added, retyped, constrained, unprotected."""

from __future__ import annotations

import re
from typing import Any

from governance.diff.model import Change
from meshkit.contracts.model import Column, Contract

_CLASSIFICATION_RANK = {"public": 0, "internal": 1, "confidential": 2, "sensitive": 2, "pii": 3, "restricted": 3}
_MASKING_RANK = {"none": 0, "partial": 1, "hash": 2, "redact": 3}
_WIDENING = {("integer", "number"), ("date", "timestamp")}  # every old value is still a valid new value
_SIZED_TYPE = re.compile(r"^\s*([A-Za-z_ ]+?)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)\s*$")
# option -> +1 when a larger value accepts more, -1 when a larger value accepts less
_BOUNDS = {
    "maxLength": 1,
    "maximum": 1,
    "exclusiveMaximum": 1,
    "maxItems": 1,
    "minLength": -1,
    "minimum": -1,
    "exclusiveMinimum": -1,
    "minItems": -1,
}


def column_changes(old: Contract, new: Contract) -> list[Change]:
    """Removed, renamed and added columns, then what changed in each column both versions have."""
    old_cols = {c.name: c for c in old.columns}
    new_cols = {c.name: c for c in new.columns}
    removed = [c for n, c in old_cols.items() if n not in new_cols]
    added = [c for n, c in new_cols.items() if n not in old_cols]
    changes: list[Change] = []
    for gone in removed:
        twin = next((a for a in added if a.index == gone.index and _same_type(gone, a)), None)
        if twin is not None:
            added.remove(twin)
            changes.append(
                Change(
                    "breaking",
                    "column-renamed",
                    twin.field_path,
                    gone.name,
                    twin.name,
                    f"column {gone.name!r} renamed to {twin.name!r}; queries naming {gone.name!r} break",
                )
            )
            changes += _compare_column(gone, twin)
        else:
            changes.append(
                Change(
                    "breaking",
                    "column-removed",
                    gone.field_path,
                    gone.name,
                    None,
                    f"column {gone.name!r} removed; consumers reading it break",
                )
            )
    for extra in added:
        if extra.required:
            changes.append(
                Change(
                    "breaking",
                    "required-column-added",
                    extra.field_path,
                    None,
                    extra.name,
                    f"required column {extra.name!r} added; producers that do not send it fail",
                )
            )
        else:
            changes.append(
                Change(
                    "non-breaking",
                    "column-added",
                    extra.field_path,
                    None,
                    extra.name,
                    f"nullable column {extra.name!r} added",
                )
            )
        if extra.personal and extra.masking == "none":
            changes.append(
                Change(
                    "governance",
                    "unmasked-personal-column-added",
                    extra.field_path,
                    None,
                    extra.name,
                    f"personal column {extra.name!r} added without masking",
                )
            )
    for name, before in old_cols.items():
        if name in new_cols:
            changes += _compare_column(before, new_cols[name])
    return changes


def _same_type(a: Column, b: Column) -> bool:
    return a.logical_type == b.logical_type and (a.physical_type or "").upper() == (b.physical_type or "").upper()


def _compare_column(old: Column, new: Column) -> list[Change]:
    at, name = new.field_path, new.name
    changes = _type_changes(old, new)
    if old.required != new.required:
        if new.required:
            changes.append(
                Change(
                    "breaking",
                    "required-added",
                    f"{at}.required",
                    False,
                    True,
                    f"column {name!r} became required; producers sending nulls fail",
                )
            )
        else:
            changes.append(
                Change(
                    "breaking",
                    "required-removed",
                    f"{at}.required",
                    True,
                    False,
                    f"column {name!r} may now be null; consumers assuming a value break",
                )
            )
    changes += _enum_changes(old, new)
    changes += _option_changes(old, new)
    changes += _protection_changes(old, new)
    if (old.description or "") != (new.description or ""):
        changes.append(
            Change(
                "non-breaking",
                "description-changed",
                f"{at}.description",
                old.description,
                new.description,
                f"description of column {name!r} changed",
            )
        )
    return changes


def _sized(physical: str | None) -> tuple[str, int | None, int | None]:
    text = (physical or "").strip().upper()
    match = _SIZED_TYPE.match(text)
    if not match:
        return text, None, None
    scale = match.group(3)
    return match.group(1).strip(), int(match.group(2)), int(scale) if scale is not None else None


def _type_changes(old: Column, new: Column) -> list[Change]:
    at, name = new.field_path, new.name
    if old.logical_type != new.logical_type:
        widened = (old.logical_type, new.logical_type) in _WIDENING
        return [
            Change(
                "non-breaking" if widened else "breaking",
                "type-widened" if widened else "type-changed",
                f"{at}.logicalType",
                old.logical_type,
                new.logical_type,
                f"column {name!r} type {old.logical_type} -> {new.logical_type}"
                + ("" if widened else "; existing readers and writers break"),
            )
        ]
    if (old.physical_type or "").upper() == (new.physical_type or "").upper():
        return []
    base_old, size_old, scale_old = _sized(old.physical_type)
    base_new, size_new, scale_new = _sized(new.physical_type)
    field, pair = f"{at}.physicalType", (old.physical_type, new.physical_type)
    text = f"column {name!r} physical type {old.physical_type} -> {new.physical_type}"
    if base_old == base_new and size_old is not None and size_new is not None:
        narrowed = size_new < size_old or (scale_new or 0) < (scale_old or 0)
        integer_digits_shrink = size_new - (scale_new or 0) < size_old - (scale_old or 0)
        if narrowed or integer_digits_shrink:
            return [
                Change("breaking", "type-narrowed", field, *pair, f"{text}: values that fit before may not fit now")
            ]
        return [Change("non-breaking", "type-widened", field, *pair, text)]
    if base_old == base_new and size_old is not None and size_new is None:
        return [Change("non-breaking", "type-widened", field, *pair, f"{text}: size limit removed")]
    return [Change("breaking", "type-changed", field, *pair, f"{text}; existing readers and writers break")]


def _enum_changes(old: Column, new: Column) -> list[Change]:
    at, name = new.field_path, new.name
    before, after = old.valid_values, new.valid_values
    if before == after:
        return []
    if after is None:
        return [
            Change(
                "non-breaking",
                "enum-removed",
                f"{at}.quality",
                list(before or ()),
                None,
                f"column {name!r} no longer restricts its values",
            )
        ]
    if before is None:
        return [
            Change(
                "breaking",
                "enum-added",
                f"{at}.quality",
                None,
                list(after),
                f"column {name!r} now accepts only {list(after)}",
            )
        ]
    gone = [v for v in before if v not in after]
    extra = [v for v in after if v not in before]
    changes: list[Change] = []
    if gone:
        changes.append(
            Change(
                "breaking",
                "enum-values-removed",
                f"{at}.quality",
                gone,
                None,
                f"column {name!r} no longer accepts {gone}",
            )
        )
    if extra:
        changes.append(
            Change(
                "non-breaking",
                "enum-values-added",
                f"{at}.quality",
                None,
                extra,
                f"column {name!r} also accepts {extra}",
            )
        )
    return changes


def _option_changes(old: Column, new: Column) -> list[Change]:
    at, name = new.field_path, new.name
    changes: list[Change] = []
    for key in sorted(set(old.options) | set(new.options)):
        before, after = old.options.get(key), new.options.get(key)
        if before == after:
            continue
        field = f"{at}.logicalTypeOptions.{key}"
        if key in _BOUNDS:
            changes.append(_bound_change(name, key, field, before, after))
        elif key == "pattern":
            tightened = after is not None
            changes.append(
                Change(
                    "breaking" if tightened else "non-breaking",
                    "pattern-tightened" if tightened else "pattern-removed",
                    field,
                    before,
                    after,
                    f"column {name!r} pattern {before!r} -> {after!r}",
                )
            )
        elif after is None:
            changes.append(
                Change(
                    "non-breaking", "option-removed", field, before, None, f"column {name!r} no longer constrains {key}"
                )
            )
        else:
            changes.append(
                Change(
                    "breaking", "option-changed", field, before, after, f"column {name!r} {key} {before!r} -> {after!r}"
                )
            )
    return changes


def _bound_change(name: str, key: str, field: str, before: Any, after: Any) -> Change:
    direction = _BOUNDS[key]
    if after is None:
        tighter = False
    elif before is None:
        tighter = True
    else:
        try:
            tighter = (float(after) - float(before)) * direction < 0
        except (TypeError, ValueError):
            tighter = True
    return Change(
        "breaking" if tighter else "non-breaking",
        f"{key}-{'tightened' if tighter else 'relaxed'}",
        field,
        before,
        after,
        f"column {name!r} {key} {before!r} -> {after!r}",
    )


def _protection_changes(old: Column, new: Column) -> list[Change]:
    at, name = new.field_path, new.name
    changes: list[Change] = []
    if old.personal and not new.personal:
        changes.append(
            Change(
                "governance",
                "personal-data-unflagged",
                f"{at}.customProperties.personalData",
                True,
                False,
                f"column {name!r} is no longer marked as personal data",
            )
        )
    rank_old = _CLASSIFICATION_RANK.get(old.classification or "", -1)
    rank_new = _CLASSIFICATION_RANK.get(new.classification or "", -1)
    if old.classification != new.classification and rank_new < rank_old:
        changes.append(
            Change(
                "governance",
                "classification-downgraded",
                f"{at}.classification",
                old.classification,
                new.classification,
                f"column {name!r} classification {old.classification} -> {new.classification}",
            )
        )
    if _MASKING_RANK.get(new.masking, 0) < _MASKING_RANK.get(old.masking, 0):
        changes.append(
            Change(
                "governance",
                "masking-weakened",
                f"{at}.customProperties.masking",
                old.masking,
                new.masking,
                f"column {name!r} masking {old.masking} -> {new.masking}",
            )
        )
    return changes
