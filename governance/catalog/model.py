"""The catalog model: what a consumer needs to know of each product, gathered once from the repository
and from what runs left behind.

Contracts, descriptors and access.yaml say what a product is and promises; the metrics store, the SLO
status and the OpenLineage events say how it did last. Only schema metadata appears, never a data
value (no examples, no sample rows). A product that cannot load still gets an entry naming the error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from governance.catalog.sources import (
    Assertion,
    Neighbours,
    latest_assertions,
    lineage_neighbours,
    load_events,
)
from governance.validation.access import AccessBindings, parse_access
from meshkit.config import Settings
from meshkit.contracts.model import Column, Contract
from meshkit.errors import MeshkitError
from meshkit.products.discovery import discover
from meshkit.products.model import ACCESS_FILE, DataProduct
from meshkit.yamlio import load_yaml
from monitoring.metrics.run import RunSummary
from monitoring.metrics.store import MetricsStore
from monitoring.slo.status import ProductSlos, judge

# ODCS comparison operators of a quality rule, as a reader sees them
_OPERATORS = {
    "mustBe": "=",
    "mustNotBe": "≠",
    "mustBeGreaterThan": ">",
    "mustBeGreaterOrEqualTo": "≥",
    "mustBeLessThan": "<",
    "mustBeLessOrEqualTo": "≤",
    "mustBeBetween": "between",
    "mustNotBeBetween": "not between",
}


@dataclass(frozen=True)
class CatalogColumn:
    """Schema metadata of one column (nested fields as `parent.child`)."""

    name: str
    type: str
    physical_type: str | None
    required: bool
    key: bool
    classification: str | None
    personal: bool
    masking: str
    description: str | None


@dataclass(frozen=True)
class CatalogPort:
    direction: str  # input | output
    name: str
    version: str
    type: str | None = None  # output ports: table, …
    product: str | None = None  # input ports fed by another product
    port: str | None = None
    contract_id: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class QualityRule:
    """One ODCS quality rule of the contract and, when a run judged it, its latest outcome."""

    name: str
    column: str | None
    kind: str  # the ODCS metric (library rules), or sql / custom / text
    threshold: str | None
    dimension: str | None
    severity: str | None
    description: str | None
    last: Assertion | None = None

    @property
    def state(self) -> str:
        """passed / failed from the last run that judged the rule, else not-run."""
        if self.last is None:
            return "not-run"
        return "passed" if self.last.success else "failed"


@dataclass(frozen=True)
class AccessRole:
    """A contract role, who may ask for it and why the current holders have it (principals counted, not named)."""

    role: str
    access: str | None
    description: str | None
    purposes: tuple[str, ...] = ()
    expires: tuple[str, ...] = ()
    gcp_principals: int = 0
    azure_principals: int = 0


@dataclass(frozen=True)
class ProductEntry:
    """Everything the catalog shows of one product."""

    ref: str
    domain: str
    name: str
    title: str  # the schema's business name, else the product name
    description: str | None = None
    usage: str | None = None
    limitations: str | None = None
    status: str | None = None  # lifecycle of the descriptor (proposed … retired)
    version: str | None = None
    owner: str | None = None
    team: str | None = None
    support: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    contract_id: str | None = None
    contract_version: str | None = None
    contract_file: str = ""  # root-relative
    table: str | None = None
    ports: tuple[CatalogPort, ...] = ()
    columns: tuple[CatalogColumn, ...] = ()
    quality: tuple[QualityRule, ...] = ()
    other_checks: tuple[Assertion, ...] = ()  # checks the last run reported that no contract rule names
    roles: tuple[AccessRole, ...] = ()
    neighbours: Neighbours = field(default_factory=Neighbours)
    last_run: RunSummary | None = None
    slos: ProductSlos | None = None
    load_error: str | None = None

    @property
    def classifications(self) -> tuple[str, ...]:
        """Classification levels of the columns, most columns first (then by name)."""
        counts = self.classification_counts
        return tuple(sorted(counts, key=lambda c: (-counts[c], c)))

    @property
    def classification_counts(self) -> dict[str, int]:
        return dict(Counter(c.classification or "unclassified" for c in self.columns))

    @property
    def personal_columns(self) -> tuple[CatalogColumn, ...]:
        return tuple(c for c in self.columns if c.personal)

    @property
    def quality_state(self) -> str:
        """failed when a judged rule failed, passed when all judged rules passed, not-run otherwise."""
        states = {r.state for r in self.quality}
        if "failed" in states:
            return "failed"
        return "passed" if "passed" in states else "not-run"


@dataclass(frozen=True)
class Catalog:
    products: tuple[ProductEntry, ...]
    judged_at: str  # when the SLO budgets were judged (ISO-8601, seconds); "" when nothing ran yet
    lineage_source: str  # "events" (OpenLineage) or "ports" (descriptors' input ports)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(sorted({p.domain for p in self.products}))

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(sorted({p.status for p in self.products if p.status}))

    @property
    def classifications(self) -> tuple[str, ...]:
        return tuple(sorted({c for p in self.products for c in p.classifications}))


def build_catalog(settings: Settings, now: datetime | None = None) -> Catalog:
    """The catalog of every product under `settings.domains_dir`; SLO budgets judged at `now` (default:
    when the newest recorded run ended)."""
    products = discover(settings.domains_dir)
    store = MetricsStore(settings.metrics_path)
    last_runs = store.latest_by_product()
    runs = store.runs()
    when = now or _newest(runs)
    slos = judge(products, runs, when)
    events = load_events(settings.lineage_path)
    assertions = latest_assertions(events)
    neighbours = lineage_neighbours(products, events)
    root = settings.root.resolve()
    entries = tuple(
        _entry(p, root, last_runs.get(p.ref), s, assertions.get(p.ref, {}), neighbours[p.ref])
        for p, s in zip(products, slos, strict=True)
    )
    judged_at = when.isoformat(timespec="seconds") if runs else ""
    return Catalog(entries, judged_at, "events" if events else "ports")


def _newest(runs: Sequence[RunSummary]) -> datetime:
    """When the newest recorded run ended: budgets judged then make the catalog a pure function of the
    repository and the runs (the same inputs give the same pages). Without runs every objective has no
    data whatever the time."""
    ends = []
    for run in runs:
        try:
            ended = datetime.fromisoformat(run.ended_at or run.started_at)
        except ValueError:
            continue  # the SLO status reports an unreadable run
        ends.append(ended if ended.tzinfo else ended.replace(tzinfo=UTC))
    return max(ends, default=datetime.now(UTC))


def _relative(path: Any, root: Any) -> str:
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else path.name


def _entry(
    product: DataProduct,
    root: Any,
    last_run: RunSummary | None,
    slos: ProductSlos,
    assertions: Mapping[str, Assertion],
    neighbours: Neighbours,
) -> ProductEntry:
    base: dict[str, Any] = {
        "ref": product.ref,
        "domain": product.domain,
        "name": product.name,
        "title": product.name,
        "contract_file": _relative(product.contract_path, root),
        "neighbours": neighbours,
        "last_run": last_run,
        "slos": slos,
    }
    try:
        base.update(_descriptor_fields(product))
        contract = product.contract
        base.update(_contract_fields(contract, assertions))
        base["roles"] = _roles(contract, _access(product))
    except MeshkitError as exc:
        base["load_error"] = exc.message  # `meshkit validate` says it in detail
    return ProductEntry(**base)


def _descriptor_fields(product: DataProduct) -> dict[str, Any]:
    d = product.descriptor
    extra = d.model_extra or {}
    listed = extra.get("support")
    support: list[Any] = listed if isinstance(listed, list) else []
    ports = [
        CatalogPort("input", p.name, p.version, None, p.product, p.port, p.contractId, p.description)
        for p in d.inputPorts
    ]
    ports += [
        CatalogPort("output", p.name, p.version, p.type, None, None, p.contractId, p.description) for p in d.outputPorts
    ]
    return {
        "status": d.status,
        "version": d.version,
        "owner": d.owner,
        "team": d.team.name,
        "support": tuple(
            " ".join(str(s[k]) for k in ("channel", "tool") if s.get(k)) for s in support if isinstance(s, dict)
        ),
        "ports": tuple(ports),
    }


def _contract_fields(contract: Contract, assertions: Mapping[str, Assertion]) -> dict[str, Any]:
    odcs, table = contract.odcs, contract.table
    description = odcs.description
    return {
        "title": table.businessName or contract.name or contract.table_name,
        "description": (description.purpose or "").strip() or table.description if description else table.description,
        "usage": (description.usage or "").strip() or None if description else None,
        "limitations": (description.limitations or "").strip() or None if description else None,
        "tags": tuple(odcs.tags or ()),
        "contract_id": contract.id,
        "contract_version": contract.version,
        "table": contract.table_name,
        "columns": tuple(c for col in contract.columns for c in _flatten(col, "")),
        "quality": (rules := _quality(contract, assertions)),
        "other_checks": tuple(a for name, a in sorted(assertions.items()) if name not in {r.name for r in rules}),
    }


def _flatten(column: Column, prefix: str) -> list[CatalogColumn]:
    """A column and its nested fields (`parent.child`; array elements as `parent[]`)."""
    name = prefix + column.name
    shown = [
        CatalogColumn(
            name,
            column.logical_type,
            column.physical_type,
            column.required,
            column.primary_key,
            column.classification,
            column.personal,
            column.masking,
            column.description,
        )
    ]
    for nested in column.fields:
        shown += _flatten(nested, f"{name}.")
    if column.items is not None:
        shown += [c for f in column.items.fields for c in _flatten(f, f"{name}[].")]
    return shown


def _quality(contract: Contract, assertions: Mapping[str, Assertion]) -> tuple[QualityRule, ...]:
    """Table rules, then each column's, in contract order."""
    table = contract.table
    found: list[tuple[str | None, Any]] = [(None, r) for r in table.quality or ()]
    found += [(p.name, r) for p in table.properties or () for r in p.quality or ()]
    rules = []
    for i, (column, rule) in enumerate(found):
        name = rule.name or f"{column or contract.table_name}.{rule.metric or rule.type or 'rule'}-{i + 1}"
        kind = rule.metric or (rule.type if rule.type and rule.type != "library" else None) or "rule"
        rules.append(
            QualityRule(
                name=name,
                column=column,
                kind=str(kind),
                threshold=_threshold(rule),
                dimension=rule.dimension,
                severity=rule.severity,
                description=rule.description,
                last=assertions.get(name),
            )
        )
    return tuple(rules)


def _threshold(rule: Any) -> str | None:
    for attr, symbol in _OPERATORS.items():
        value = getattr(rule, attr, None)
        if value is not None:
            shown = " and ".join(map(str, value)) if isinstance(value, list) else str(value)
            unit = " %" if (rule.unit or "").lower() == "percent" else ""
            return f"{symbol} {shown}{unit}"
    return None


def _access(product: DataProduct) -> AccessBindings | None:
    path = product.directory / ACCESS_FILE
    if not path.is_file():
        return None
    bindings, _ = parse_access(load_yaml(path))  # format errors are validation's to report
    return bindings


def _roles(contract: Contract, access: AccessBindings | None) -> tuple[AccessRole, ...]:
    bindings = access.bindings if access else []
    roles = []
    for role in contract.odcs.roles or ():
        if not role.role:
            continue
        mine = [b for b in bindings if b.role == role.role]
        roles.append(
            AccessRole(
                role=role.role,
                access=role.access,
                description=role.description,
                purposes=tuple(b.purpose for b in mine if b.purpose),
                expires=tuple(b.expires for b in mine if b.expires),
                gcp_principals=sum(len(b.gcp) for b in mine),
                azure_principals=sum(len(b.azure) for b in mine),
            )
        )
    return tuple(roles)
