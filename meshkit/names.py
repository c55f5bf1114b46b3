"""Validation of names users choose, before they become paths, table names or Terraform identifiers."""

from __future__ import annotations

import re

from meshkit.errors import NameError_

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_LENGTH = 40
# Words that are reserved in BigQuery/DuckDB SQL or Terraform, or that clash with our own folders.
RESERVED = frozenset(
    {
        "all", "and", "as", "build", "by", "case", "create", "data", "default", "delete", "from",
        "group", "join", "locals", "meshkit", "module", "not", "null", "or", "order", "output",
        "provider", "raw", "curated", "refined", "resource", "select", "table", "terraform", "to",
        "true", "false", "variable", "where", "with",
    }
)  # fmt: skip


def validate_name(value: str, what: str) -> str:
    """Return `value` if it is a safe lower-case kebab-case name, else raise with the rule it broke."""
    rule = (
        f"A {what} name is 1-{MAX_LENGTH} characters of lower-case letters, digits and single hyphens, "
        "starting with a letter (e.g. `payments` or `customer-exposure`)."
    )
    if not value or len(value) > MAX_LENGTH or not _NAME.match(value):
        raise NameError_(f"invalid {what} name {value!r}", hint=rule)
    if value in RESERVED:
        raise NameError_(
            f"{what} name {value!r} is a reserved word",
            hint="Choose another name; reserved: see meshkit.names.",
        )
    return value


def parse_product_ref(ref: str) -> tuple[str, str]:
    """Split and validate `<domain>/<product>`."""
    parts = ref.strip().strip("/").split("/")
    if len(parts) != 2:
        raise NameError_(
            f"product reference {ref!r} is not of the form <domain>/<product>",
            hint="Write it as e.g. `payments/transactions`.",
        )
    return validate_name(parts[0], "domain"), validate_name(parts[1], "product")


def sql_identifier(name: str) -> str:
    """A validated kebab-case name as a SQL / BigQuery / Terraform identifier (hyphens to underscores)."""
    return name.replace("-", "_")
