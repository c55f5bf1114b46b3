"""Everything a product's monitoring needs in the cloud, generated from its contract into build/:
OpenSLO documents, Cloud Monitoring dashboards (per product and for the mesh) and alert policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meshkit.config import Settings
from meshkit.errors import MeshkitError
from meshkit.products.discovery import discover, find_product


@dataclass
class MonitoringArtifacts:
    written: list[Path] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # product -> why nothing was generated


def build_monitoring(settings: Settings, product: str | None = None) -> MonitoringArtifacts:
    """Generate the artefacts of one product or of every product; a contract that cannot load is
    reported and the others are still generated."""
    from monitoring.cloud.alerts import write_alert_policies
    from monitoring.cloud.dashboards import write_dashboards
    from monitoring.slo.derive import derive_objectives
    from monitoring.slo.openslo import export_openslo

    out = MonitoringArtifacts()
    products = [find_product(settings.domains_dir, product)] if product else discover(settings.domains_dir)
    usable, objectives = [], {}
    for p in products:
        try:
            objectives[p.ref] = derive_objectives(p.contract, p.ref)
            usable.append(p)
        except MeshkitError as exc:
            out.errors[p.ref] = exc.message
    for item in export_openslo(settings, None, product):
        if item.path is not None:
            out.written.append(item.path)
    out.written += write_dashboards(settings, usable, objectives)
    out.written += write_alert_policies(settings, usable, objectives)
    return out
