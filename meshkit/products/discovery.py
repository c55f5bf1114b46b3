"""Find products under domains/, check their ports, and order them by their dependencies."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from meshkit.checks import Check, Status
from meshkit.errors import MeshkitError, ProductNotFoundError
from meshkit.names import parse_product_ref
from meshkit.products.model import CONTRACT_FILE, DataProduct, product_from_dir


def discover(domains_dir: Path) -> list[DataProduct]:
    """Every `domains/<domain>/<product>/` holding a contract, sorted by reference."""
    if not domains_dir.is_dir():
        return []
    found = [product_from_dir(c.parent) for c in sorted(domains_dir.glob(f"*/*/{CONTRACT_FILE}"))]
    return sorted(found, key=lambda p: p.ref)


def find_product(domains_dir: Path, ref: str) -> DataProduct:
    domain, name = parse_product_ref(ref)
    directory = domains_dir / domain / name
    if not (directory / CONTRACT_FILE).is_file():
        known = ", ".join(p.ref for p in discover(domains_dir)) or "none"
        raise ProductNotFoundError(
            f"no data product {ref!r} (looked for {directory / CONTRACT_FILE})",
            hint=f"Known products: {known}. Create one with `meshkit new {ref}`.",
        )
    return DataProduct(domain=domain, name=name, directory=directory)


def check_ports(products: list[DataProduct]) -> list[Check]:
    """Input ports must name an existing product and one of its output ports; the graph must be acyclic."""
    by_ref = {p.ref: p for p in products}
    checks: list[Check] = []
    for product in products:
        try:
            descriptor = product.descriptor
        except MeshkitError:
            continue  # reported by descriptor validation
        for i, port in enumerate(descriptor.inputPorts):
            if not port.product:
                continue
            file, field = str(product.descriptor_path), f"inputPorts[{i}].product"
            upstream = by_ref.get(port.product)
            if upstream is None:
                checks.append(
                    Check(
                        "product.input-port-exists",
                        Status.FAILED,
                        f"input port {port.name!r} references unknown product {port.product!r}",
                        file=file,
                        field=field,
                        hint=f"Known products: {', '.join(sorted(by_ref))}.",
                    )
                )
                continue
            try:
                outputs = [o.name for o in upstream.descriptor.outputPorts]
            except MeshkitError:
                continue
            if port.port and port.port not in outputs:
                checks.append(
                    Check(
                        "product.input-port-exists",
                        Status.FAILED,
                        f"input port {port.name!r} references output port {port.port!r} "
                        f"that {port.product} does not have",
                        file=file,
                        field=f"inputPorts[{i}].port",
                        hint=f"Valid values are: {', '.join(outputs)}.",
                    )
                )
    try:
        dependency_order(products)
    except MeshkitError as exc:
        checks.append(Check("product.graph-acyclic", Status.FAILED, exc.reason, hint=exc.hint))
    return checks


def dependency_order(products: list[DataProduct]) -> list[DataProduct]:
    """Products so that every product comes after the products it consumes."""
    by_ref = {p.ref: p for p in products}
    graph: dict[str, set[str]] = {}
    for p in products:
        try:
            upstream = p.descriptor.upstream
        except MeshkitError:
            upstream = ()
        graph[p.ref] = {u for u in upstream if u in by_ref}
        for u in upstream:
            parse_product_ref(u)
    try:
        return [by_ref[r] for r in TopologicalSorter(graph).static_order()]
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise MeshkitError(
            f"products consume each other in a cycle: {cycle}", hint="Remove one of these input ports."
        ) from exc


def lineage_edges(products: list[DataProduct]) -> list[tuple[str, str]]:
    """(upstream, downstream) pairs of the product graph."""
    edges: list[tuple[str, str]] = []
    for p in products:
        try:
            edges.extend((u, p.ref) for u in p.descriptor.upstream)
        except MeshkitError:
            continue
    return edges
