"""Governance policies as code: built-in rules plus team policies from the project's `policies/` folder.

A policy is a function `(product, context) -> Iterable[Finding]` behind the `@policy(...)` decorator,
with an id, severity, rationale and a lifecycle (draft -> warn -> enforce from a date).
"""

from __future__ import annotations

from governance.policies.model import Finding, Policy, evaluate, evaluate_product, policy
from governance.policies.registry import load_policies

__all__ = ["Finding", "Policy", "evaluate", "evaluate_product", "load_policies", "policy"]
