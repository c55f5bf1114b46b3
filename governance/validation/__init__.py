"""Validation of contracts and products: official ODCS schema, meshkit semantics, access bindings.

Every function here returns `meshkit.checks.Check` results; nothing raises for a bad input file.
"""

from __future__ import annotations

from governance.validation.contract_schema import schema_checks
from governance.validation.contract_semantics import semantic_checks

__all__ = ["schema_checks", "semantic_checks"]
