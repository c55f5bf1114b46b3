"""The cloud resources of one product, named the way the pipeline writes them (one place for names).

BigQuery: dataset `<dataset>` (the contract's lake server) with `<table>_changelog`, `<table>_current`
and `<table>_dead_letters`; authorized views for masked consumers in `<dataset>_masked`. GCS:
`<prefix>-raw` and `<prefix>-curated` buckets, objects under `<domain>/<product>/`. Azure: the
contract's Cosmos DB container and the event hub `<domain>.<product>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshkit.config import Settings
from meshkit.contracts.model import Column
from meshkit.errors import ContractError
from meshkit.names import sql_identifier
from meshkit.products.model import DataProduct

# classifications whose data must be encrypted with a customer-managed key, and that get policy tags
CMEK_CLASSIFICATIONS = frozenset({"confidential", "restricted", "pii", "sensitive"})
CLASSIFICATION_RANK = {"public": 0, "internal": 1, "confidential": 2, "sensitive": 2, "restricted": 3, "pii": 3}
TABLE_SUFFIXES = ("changelog", "current", "dead_letters", "duplicates")  # every table the pipeline writes
CONSUMER_TABLES = ("changelog", "current")  # dead letters hold unmasked rejected events: pipeline only
ZONES = ("raw", "curated")


@dataclass(frozen=True)
class ProductResources:
    """Names of everything a product owns on both clouds."""

    domain: str
    name: str
    project: str
    dataset: str
    table: str
    bucket_prefix: str
    tagged: dict[str, tuple[str, ...]]  # classification -> personal/classified column names carrying its tag
    view_columns: tuple[str, ...]  # what a masked consumer sees through the authorized views
    classification: str  # the highest classification of any column
    cosmos_account: str | None
    cosmos_database: str | None
    cosmos_container: str | None
    checkpoint_container: str

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.name}"

    @property
    def slug(self) -> str:
        """A Terraform- and cloud-safe identifier of the product (names are validated kebab-case)."""
        return sql_identifier(f"{self.domain}-{self.name}")

    @property
    def needs_cmek(self) -> bool:
        return self.classification in CMEK_CLASSIFICATIONS

    @property
    def masked_dataset(self) -> str:
        return f"{self.dataset}_masked"

    def table_id(self, suffix: str) -> str:
        return f"{self.table}_{suffix}"

    def bucket(self, zone: str) -> str:
        return f"{self.bucket_prefix}-{zone}"

    @property
    def object_prefix(self) -> str:
        return f"{self.domain}/{self.name}/"

    def prefix_condition(self, zone: str) -> str:
        """IAM condition (CEL) limiting a bucket grant to the product's objects."""
        return f'resource.name.startsWith("projects/_/buckets/{self.bucket(zone)}/objects/{self.object_prefix}")'

    def policy_tag(self, classification: str) -> str:
        """The product's own child tag under the platform taxonomy's classification tag."""
        return f"{self.domain}-{self.name}-{classification}"

    @property
    def event_hub(self) -> str:
        return f"{self.domain}.{self.name}"

    @property
    def consumer_group(self) -> str:
        return f"{self.domain}-{self.name}-pipeline"

    @property
    def pipeline_identity(self) -> str:
        """The Azure identity the product module creates for the GCP pipeline (workload identity federation)."""
        return f"mi-{self.domain}-{self.name}-pipeline"

    @property
    def has_azure_source(self) -> bool:
        return self.cosmos_container is not None


def _rank(column: Column) -> int:
    return CLASSIFICATION_RANK.get(column.classification or "internal", 1)


def product_resources(product: DataProduct, settings: Settings) -> ProductResources:
    """Resource names from the contract (lake server, source server, columns) and the settings."""
    contract = product.contract
    lake = contract.server("bigquery")
    if lake is None or not lake.project or not lake.dataset:
        raise ContractError(
            "the contract has no BigQuery lake server with `project` and `dataset`",
            location=contract.document.location("servers"),
            hint="Add a server `{server: lake, type: bigquery, project: <gcp-project>, dataset: <domain>}`.",
        )
    tagged: dict[str, list[str]] = {}
    for col in contract.columns:
        if col.personal or (col.classification or "") in CMEK_CLASSIFICATIONS:
            tagged.setdefault(col.classification or "restricted", []).append(col.name)
    hidden = {name for names in tagged.values() for name in names}
    top = max(contract.columns, key=_rank, default=None)
    source = contract.source
    cosmos = source is not None and source.kind == "cosmosdb"
    return ProductResources(
        domain=product.domain,
        name=product.name,
        project=lake.project,
        dataset=lake.dataset,
        table=sql_identifier(contract.table_name),
        bucket_prefix=settings.lake_bucket_prefix,
        tagged={k: tuple(v) for k, v in sorted(tagged.items())},
        view_columns=tuple(c.name for c in contract.columns if c.name not in hidden),
        classification=(top.classification or "internal") if top else "internal",
        cosmos_account=source.account if cosmos and source else None,
        cosmos_database=source.database if cosmos and source else None,
        cosmos_container=source.container if cosmos and source else None,
        checkpoint_container=settings.checkpoint_container,
    )
