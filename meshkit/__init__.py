"""meshkit: data products from ODCS contracts to governed pipelines across Azure and GCP."""

from __future__ import annotations

__version__ = "0.1.0"
