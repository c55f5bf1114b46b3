"""The cost model: monthly cost per product and for the mesh from contracts, measured runs and a
versioned price table; monitoring spend as a share of each product; the SFTP-batch comparison."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from governance.cost.model import DEFAULT_MONITORING_BUDGET_SHARE, LineItem, MeshCost, ProductCost, ProductVolume
from governance.cost.prices import DEFAULT_PRICES, PriceTable, load_prices
from meshkit.config import Settings
from meshkit.products.model import DataProduct

__all__ = [
    "DEFAULT_MONITORING_BUDGET_SHARE",
    "DEFAULT_PRICES",
    "LineItem",
    "MeshCost",
    "PriceTable",
    "ProductCost",
    "ProductVolume",
    "estimate_cost",
    "load_prices",
]


def estimate_cost(
    settings: Settings,
    products: Iterable[DataProduct],
    prices_path: Path | None = None,
    budget_share: float = DEFAULT_MONITORING_BUDGET_SHARE,
    only: str | None = None,
) -> MeshCost:
    """The mesh's monthly estimate: volumes measured from the workspace, priced from the table.
    `only` keeps one product's figures (volumes still see all products: a refined one sums its upstream)."""
    from governance.cost.model import estimate_mesh
    from governance.cost.volumes import mesh_volumes

    volumes = [v for v in mesh_volumes(settings, products) if only is None or v.product == only]
    return estimate_mesh(volumes, load_prices(prices_path), budget_share)
