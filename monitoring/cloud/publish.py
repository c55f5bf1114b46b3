"""Where a run's figures go besides the local store: on the `cloud` profile, Cloud Monitoring.

The local and emulators profiles keep figures in the local metrics store only (the emulator tests hand
a client pointed at the gRPC fake to `CloudMonitoringMetricsWriter` themselves). The cloud profile
needs `gcp_project` and the process's Google identity (workload identity on Dataflow/GKE, never a key).
"""

from __future__ import annotations

import logging
from typing import Any

from meshkit.config import Settings
from meshkit.errors import ConfigError, MeshkitError
from meshkit.products.discovery import find_product
from monitoring.metrics.run import RunSummary

logger = logging.getLogger(__name__)


def publish_run_metrics(settings: Settings, summary: RunSummary, client: Any | None = None) -> bool:
    """Write the run's figures to Cloud Monitoring on the cloud profile; False when the profile keeps
    figures locally. A failed write is logged, never fails the run: the local store has the figures."""
    if settings.profile != "cloud":
        return False
    if not settings.gcp_project:
        raise ConfigError(
            "setting 'gcp_project' is not set (profile 'cloud')",
            hint="Set MESHKIT_GCP_PROJECT or gcp_project in meshkit.yaml to the project that holds the metrics.",
        )
    from monitoring.cloud.metrics_writer import CloudMonitoringMetricsWriter
    from monitoring.slo.derive import derive_objectives

    if client is None:
        from google.cloud import monitoring_v3

        client = monitoring_v3.MetricServiceClient()
    product = find_product(settings.domains_dir, summary.product)
    writer = CloudMonitoringMetricsWriter(
        client,
        settings.gcp_project,
        environment=settings.environment,
        location=settings.gcp_location,
        objectives=derive_objectives(product.contract, product.ref),
    )
    try:
        writer.write(summary)
        writer.flush()
    except MeshkitError as exc:
        logger.warning("run metrics not written to Cloud Monitoring (kept in the local store): %s", exc.message)
        return False
    return True
