"""The ODPS product descriptor (`dataproduct.yaml`), parsed at the edge with pydantic."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

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
        return ProductDescriptor.model_validate(document.data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(".[", "[")
        raise ContractError(
            err["msg"].lower(),
            location=document.location(field),
            hint="A dataproduct.yaml needs apiVersion, kind: DataProduct, id, name, domain, version, "
            "status (proposed|draft|active|deprecated|retired), team and at least one output port.",
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
    def is_refined(self) -> bool:
        """A refined product consumes other products instead of a source system."""
        return bool(self.descriptor.upstream)


def product_from_dir(directory: Path) -> DataProduct:
    domain, name = parse_product_ref(f"{directory.parent.name}/{directory.name}")
    return DataProduct(domain=domain, name=name, directory=directory)
