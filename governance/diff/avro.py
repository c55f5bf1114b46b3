"""Avro compatibility of a contract change under the product's `schemaCompatibility` mode (default backward).

With `bus_format: avro` the registry refuses a schema that breaks the subject's mode, so the relay of
the new contract would stop at its first event; `meshkit diff` says so before the merge. Each
incompatibility is a breaking change (a major version, and a new subject on the bus) naming the field
and what to do instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from governance.diff.model import Change
from meshkit.contracts.avro import compatibility_mode
from meshkit.contracts.avro_compat import contract_schema_changes
from meshkit.contracts.model import Contract


def _field_path(contract: Contract, path: str) -> str:
    """`users.credit_limit` (or `Change.current.cpf`, a source field) -> `schema[0].properties[9]`."""
    name = path.rpartition(".")[2].removesuffix("[]")
    for column in contract.columns:
        if name in (column.name, column.source_field):
            return column.field_path
    return "schema[0].properties"


def avro_changes(old: Contract, new: Contract, covered: Iterable[Change] = ()) -> list[Change]:
    """One breaking change per Avro incompatibility of `old` -> `new` under the new contract's mode,
    except on a field that `covered` (the other classified changes) already marks as breaking."""
    mode = compatibility_mode(new)
    seen = {c.field for c in covered if c.kind == "breaking"}
    changes: list[Change] = []
    for item in contract_schema_changes(old, new, mode):
        field = _field_path(new if item.direction == "backward" else old, item.path)
        if any(f == field or f.startswith(f"{field}.") for f in seen):
            continue  # e.g. `type-changed` at schema[0].properties[9].logicalType says it already
        seen.add(field)
        message = f"Avro {mode.upper()} compatibility: {item.path}: {item.message}. {item.hint}"
        changes.append(Change("breaking", f"avro-{item.code}", field, None, None, message))
    return changes
