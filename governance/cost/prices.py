"""The price table: a versioned, editable YAML file of list prices (`prices/<version>.yaml`).

Every figure the cost model prints is a quantity times one of these keys; a table that lacks a key,
or has a negative or non-numeric value, is refused with the file, line and key named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meshkit.errors import ConfigError, ContractError
from meshkit.yamlio import YamlDocument, load_yaml

DEFAULT_PRICES = Path(__file__).parent / "prices" / "2026-11.yaml"

# every key the model multiplies by; the table may hold more (ignored), never fewer
REQUIRED_KEYS: tuple[str, ...] = (
    "cosmos.serverless_per_million_ru",
    "eventhubs.standard_tu_hour",
    "eventhubs.standard_ingress_per_million_events",
    "azure.egress_internet_per_gb",
    "azure.sftp_endpoint_hour",
    "dataflow.streaming_vcpu_hour",
    "dataflow.batch_vcpu_hour",
    "dataflow.memory_gb_hour",
    "dataflow.streaming_engine_per_gb",
    "gcs.standard_gb_month",
    "gcs.nearline_gb_month",
    "bigquery.active_storage_gb_month",
    "bigquery.long_term_storage_gb_month",
    "bigquery.on_demand_per_tib",
    "bigquery.storage_write_per_gb",
    "monitoring.ingestion_per_mib",
    "monitoring.alert_condition_month",
)
_ITEM_FIELDS = ("value", "unit", "source", "as_of")


@dataclass(frozen=True)
class PriceItem:
    """One list price, with where it came from."""

    key: str
    value: float
    unit: str
    source: str
    as_of: str
    region: str | None = None


@dataclass(frozen=True)
class PriceTable:
    """A loaded price table; `price(key)` is the only way the model reads a price."""

    path: Path
    version: str
    currency: str
    items: dict[str, PriceItem]

    def price(self, key: str) -> float:
        return self.items[key].value


def _fail(document: YamlDocument, field: str, reason: str, hint: str) -> ConfigError:
    return ConfigError(reason, location=document.location(field), hint=hint)


def load_prices(path: Path | None = None) -> PriceTable:
    """Load and validate a price table (the shipped one by default)."""
    path = path or DEFAULT_PRICES
    try:
        document = load_yaml(path)
    except ContractError as exc:  # the loader speaks of contracts; a price table is configuration
        raise ConfigError(f"price table: {exc.reason}", location=exc.location, hint=exc.hint) from exc
    return parse_prices(document)


def parse_prices(document: YamlDocument) -> PriceTable:
    data = document.data
    if not isinstance(data, dict):
        raise _fail(document, "", "a price table must be a YAML mapping", f"Start from {DEFAULT_PRICES.name}.")
    for key in ("version", "currency"):
        if not isinstance(data.get(key), str | int) or str(data.get(key)).strip() == "":
            raise _fail(document, key, f"missing key {key!r}", f"Add `{key}:` at the top (see {DEFAULT_PRICES.name}).")
    if str(data["currency"]) != "USD":
        raise _fail(document, "currency", f"currency {data['currency']!r} is not supported", "Valid values are: USD.")
    raw_items = data.get("prices")
    if not isinstance(raw_items, dict):
        raise _fail(document, "prices", "missing mapping 'prices'", "Add `prices:` with one entry per price key.")
    missing = [k for k in REQUIRED_KEYS if k not in raw_items]
    if missing:
        raise _fail(
            document,
            "prices",
            f"missing price key {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            f"Every key in {DEFAULT_PRICES.name} is required; copy the missing entries from it.",
        )
    items = {key: _item(document, key, raw_items[key]) for key in REQUIRED_KEYS}
    return PriceTable(path=document.path, version=str(data["version"]), currency="USD", items=items)


def _item(document: YamlDocument, key: str, raw: object) -> PriceItem:
    field = f"prices.{key}"
    if not isinstance(raw, dict):
        raise _fail(
            document, field, f"price {key!r} must be a mapping", f"Give it the fields {', '.join(_ITEM_FIELDS)}."
        )
    for name in _ITEM_FIELDS:
        if raw.get(name) in (None, ""):
            raise _fail(
                document,
                f"{field}.{name}",
                f"price {key!r} has no {name!r}",
                "Every price says its unit, source and date.",
            )
    value = raw["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _fail(
            document, f"{field}.value", f"price {key!r} has value {value!r}", "A price is a number >= 0 in USD."
        )
    region = raw.get("region")
    return PriceItem(
        key, float(value), str(raw["unit"]), str(raw["source"]), str(raw["as_of"]), str(region) if region else None
    )
