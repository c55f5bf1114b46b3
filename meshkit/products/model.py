"""The ODPS product descriptor (`dataproduct.yaml`), parsed at the edge with pydantic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meshkit.contracts.model import Contract, load_contract
from meshkit.errors import ContractError
from meshkit.names import parse_product_ref
from meshkit.yamlio import YamlDocument, load_yaml

Lifecycle = Literal["proposed", "draft", "active", "deprecated", "retired"]
CONTRACT_FILE = "datacontract.yaml"
DESCRIPTOR_FILE = "dataproduct.yaml"
PIPELINE_FILE = "pipeline.py"
ACCESS_FILE = "access.yaml"
SCHEDULE_PROPERTY = "schedule"  # ODPS customProperties entry: `streaming` or `every <N>m|h`
DEFAULT_SCHEDULE = "every 15m"
MIN_BATCH_MINUTES = 5  # a Dataflow batch job takes minutes to start; more often than this, run streaming
_EVERY = re.compile(r"^every\s+(?P<n>[1-9][0-9]*)\s*(?P<unit>m|min|minutes?|h|hours?)$")
_SCHEDULE_HINT = (
    "Write `customProperties: [{property: schedule, value: streaming}]` for a streaming job, or "
    f"`value: every <N>m` / `every <N>h` for a bounded micro-batch run every N minutes or hours (at least "
    f"{MIN_BATCH_MINUTES}m; N must divide an hour or a day so cron can express it). Default: {DEFAULT_SCHEDULE}."
)


class _Edge(BaseModel):
    model_config = ConfigDict(extra="allow")


class TeamMember(_Edge):
    username: str
    role: str | None = None


class Team(_Edge):
    name: str
    members: list[TeamMember] = Field(default_factory=list)


class InputPort(_Edge):
    name: str
    version: str
    contractId: str | None = None  # noqa: N815 - ODPS field name
    product: str | None = None
    port: str | None = None
    description: str | None = None


class OutputPort(_Edge):
    name: str
    version: str
    type: str = "table"
    contractId: str | None = None  # noqa: N815 - ODPS field name
    description: str | None = None


class CustomProperty(_Edge):
    """ODPS `customProperties` entry: a named value with an optional description."""

    property: str
    value: Any = None
    description: str | None = None


@dataclass(frozen=True)
class Schedule:
    """How the product's pipeline runs in the cloud: one streaming job, or a bounded run every N minutes."""

    streaming: bool
    every_minutes: int | None = None

    @property
    def mode(self) -> Literal["streaming", "bounded"]:
        return "streaming" if self.streaming else "bounded"

    @property
    def cron(self) -> str | None:
        """Unix cron for Cloud Scheduler (and a local crontab); None for streaming."""
        n = self.every_minutes
        if n is None:
            return None
        if n < 60:
            return f"*/{n} * * * *"
        hours = n // 60
        return {1: "0 * * * *", 24: "0 0 * * *"}.get(hours, f"0 */{hours} * * *")

    def __str__(self) -> str:
        n = self.every_minutes
        if n is None:
            return "streaming"
        return f"every {n}m" if n < 60 else f"every {n // 60}h"


def parse_schedule(value: object) -> Schedule:
    """`streaming`, `every 15m`, `every 2h`; raises ValueError saying why (the caller adds file and field)."""
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if text == "streaming":
        return Schedule(streaming=True)
    match = _EVERY.match(text)
    if not match:
        raise ValueError(f"schedule {value!r} is neither `streaming` nor `every <N>m` / `every <N>h`")
    n = int(match["n"])
    minutes = n * 60 if match["unit"].startswith("h") else n
    if minutes < MIN_BATCH_MINUTES:
        raise ValueError(f"schedule {value!r} is more often than every {MIN_BATCH_MINUTES}m")
    if (minutes < 60 and 60 % minutes) or (minutes >= 60 and (minutes % 60 or 24 % (minutes // 60))):
        raise ValueError(f"schedule {value!r} does not divide an hour or a day, so cron cannot run it evenly")
    return Schedule(streaming=False, every_minutes=minutes)


class ProductDescriptor(_Edge):
    apiVersion: str  # noqa: N815 - ODPS field name
    kind: Literal["DataProduct"]
    id: str
    name: str
    domain: str
    version: str
    status: Lifecycle
    team: Team
    inputPorts: list[InputPort] = Field(default_factory=list)  # noqa: N815 - ODPS field name
    outputPorts: list[OutputPort] = Field(min_length=1)  # noqa: N815 - ODPS field name
    customProperties: list[CustomProperty] = Field(default_factory=list)  # noqa: N815 - ODPS field name

    def schedule_index(self) -> int | None:
        """Index of the `schedule` custom property (the last one wins, as for contracts)."""
        found = [i for i, cp in enumerate(self.customProperties) if cp.property == SCHEDULE_PROPERTY]
        return found[-1] if found else None

    @property
    def schedule(self) -> Schedule:
        """The descriptor's schedule (default every 15 minutes); `parse_descriptor` has already vetted it."""
        index = self.schedule_index()
        return parse_schedule(DEFAULT_SCHEDULE if index is None else self.customProperties[index].value)

    @property
    def owner(self) -> str:
        owners = [m.username for m in self.team.members if (m.role or "").lower() == "owner"]
        return owners[0] if owners else self.team.name

    @property
    def upstream(self) -> tuple[str, ...]:
        """`domain/product` references of input ports that consume other products."""
        return tuple(p.product for p in self.inputPorts if p.product)


def parse_descriptor(document: YamlDocument) -> ProductDescriptor:
    try:
        descriptor = ProductDescriptor.model_validate(document.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
        raise ContractError(
            err["msg"].lower(),
            location=document.location(field),
            hint="A dataproduct.yaml needs apiVersion, kind: DataProduct, id, name, domain, version, "
            "status (proposed|draft|active|deprecated|retired), team and at least one output port.",
        ) from exc
    _check_schedule(descriptor, document)
    return descriptor


def _check_schedule(descriptor: ProductDescriptor, document: YamlDocument) -> None:
    index = descriptor.schedule_index()
    if index is None:
        return
    try:
        parse_schedule(descriptor.customProperties[index].value)
    except ValueError as exc:
        raise ContractError(
            str(exc), location=document.location(f"customProperties[{index}].value"), hint=_SCHEDULE_HINT
        ) from exc


@dataclass(frozen=True)
class DataProduct:
    """A product directory `domains/<domain>/<product>/`."""

    domain: str
    name: str
    directory: Path

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.name}"

    @property
    def contract_path(self) -> Path:
        return self.directory / CONTRACT_FILE

    @property
    def descriptor_path(self) -> Path:
        return self.directory / DESCRIPTOR_FILE

    @property
    def pipeline_path(self) -> Path:
        return self.directory / PIPELINE_FILE

    @cached_property
    def contract(self) -> Contract:
        return load_contract(self.contract_path)

    @cached_property
    def descriptor(self) -> ProductDescriptor:
        return parse_descriptor(load_yaml(self.descriptor_path))

    @property
    def schedule(self) -> Schedule:
        """Streaming job or bounded micro-batch every N minutes, from dataproduct.yaml."""
        return self.descriptor.schedule

    @property
    def is_refined(self) -> bool:
        """A refined product consumes other products instead of a source system."""
        return bool(self.descriptor.upstream)


def product_from_dir(directory: Path) -> DataProduct:
    domain, name = parse_product_ref(f"{directory.parent.name}/{directory.name}")
    return DataProduct(domain=domain, name=name, directory=directory)
