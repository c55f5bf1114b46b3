"""Loading policies: the built-ins plus team policies from the `policies/` folder at the project root.

A team policy file is plain Python that defines policies with `@policy(...)` from
`governance.policies`; every module-level `Policy` it defines is loaded. Files whose names start
with `_` are helpers and are not loaded. Any problem becomes a `ConfigError` naming the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

from governance.policies.builtin import DEFAULT_LINEAGE_MAX_AGE_DAYS, builtin_policies
from governance.policies.model import Policy
from meshkit.errors import ConfigError, Location, MeshkitError

POLICIES_DIR = "policies"


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path.resolve()).encode(), usedforsecurity=False).hexdigest()[:10]
    return f"meshkit_team_policies.{path.stem}_{digest}"


def load_policy_file(path: Path) -> tuple[Policy, ...]:
    """The policies a team file defines; raises `ConfigError` naming the file on any problem."""
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError("cannot load this policy file", location=Location(str(path)))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing resolve names through sys.modules
    try:
        spec.loader.exec_module(module)
    except MeshkitError as exc:
        raise ConfigError(exc.reason, location=Location(str(path)), hint=exc.hint) from exc
    except SyntaxError as exc:
        raise ConfigError(
            f"syntax error: {exc.msg}", location=Location(str(path), exc.lineno), hint="Fix the Python syntax."
        ) from exc
    except Exception as exc:  # any error in a team's file: say which file, keep the cause chained
        raise ConfigError(
            f"loading failed with {type(exc).__name__}: {exc}",
            location=Location(str(path)),
            hint="Run `python <file>` to see the full traceback; a policy file may import only what is installed.",
        ) from exc
    finally:
        sys.modules.pop(name, None)
    found = tuple(_with_source(value, path) for value in vars(module).values() if isinstance(value, Policy))
    if not found:
        raise ConfigError(
            "defines no policy",
            location=Location(str(path)),
            hint="Decorate a function `(product, ctx) -> Iterable[Finding]` with `@policy(id=..., title=..., "
            "severity=..., rationale=...)`, or start the file name with `_` if it is a helper.",
        )
    return found


def _with_source(rule: Policy, path: Path) -> Policy:
    return replace(rule, source=str(path))


def team_policy_files(root: Path) -> list[Path]:
    folder = root / POLICIES_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


def load_policies(
    root: Path, *, lineage_max_age_days: int = DEFAULT_LINEAGE_MAX_AGE_DAYS, include_team: bool = True
) -> tuple[Policy, ...]:
    """Built-ins then team policies (sorted by file); a duplicate id is a `ConfigError` naming both sources."""
    policies = list(builtin_policies(lineage_max_age_days))
    for path in team_policy_files(root) if include_team else []:
        policies.extend(load_policy_file(path))
    seen: dict[str, Policy] = {}
    for rule in policies:
        if rule.id in seen:
            raise ConfigError(
                f"policy id {rule.id!r} is defined twice (also in {seen[rule.id].source})",
                location=Location(rule.source),
                hint="Policy ids are unique across the built-ins and every file in policies/; rename one.",
            )
        seen[rule.id] = rule
    return tuple(policies)
