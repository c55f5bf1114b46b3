"""`meshkit new`: a new change-feed data product from the templates in `meshkit/templates/product/`.

Names are validated before anything is rendered, every file is rendered before anything is written,
and an existing product is never overwritten without `force`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from meshkit.errors import Location, TerminalError
from meshkit.names import parse_product_ref, sql_identifier

# (template, file written); the order is the order they are reported in
PRODUCT_FILES = (
    ("datacontract.yaml.j2", "datacontract.yaml"),
    ("dataproduct.yaml.j2", "dataproduct.yaml"),
    ("pipeline.py.j2", "pipeline.py"),
    ("access.yaml.j2", "access.yaml"),
    ("README.md.j2", "README.md"),
)
# Strict on purpose: the owner lands unquoted in YAML, so no quotes, colons or spaces.
_OWNER = re.compile(r"^[a-z0-9][a-z0-9._+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}$")
ACCESS_VALID_DAYS = 365


def yaml_scalar(value: str) -> str:
    """`value` as a YAML scalar that reads back as the same string (`on` or `yes` would be booleans)."""
    return value if yaml.safe_load(value) == value else json.dumps(value)


def _environment() -> Environment:
    # Autoescape is for HTML only: these templates render YAML, Python and Markdown from validated names.
    env = Environment(
        loader=PackageLoader("meshkit", "templates/product"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml"), default_for_string=False),
        keep_trailing_newline=True,
    )
    env.filters["yaml"] = yaml_scalar
    return env


def _gcp_id(text: str) -> str:
    """A GCP project or service-account id (6-30 characters, no trailing hyphen) from a kebab name."""
    return text[:30].rstrip("-")


@dataclass(frozen=True)
class ProductScaffold:
    """Everything the templates need, derived from the validated names, the owner and the date."""

    domain: str
    product: str
    owner: str
    today: date

    def context(self) -> dict[str, str]:
        domain, product = self.domain, self.product
        return {
            "domain": domain,
            "product": product,
            "owner": self.owner,
            "owner_domain": self.owner.rsplit("@", 1)[1],
            "team": f"{domain}-team",
            "contract_id": f"urn:meshkit:contract:{domain}:{product}",
            "product_id": f"urn:meshkit:product:{domain}:{product}",
            "table": sql_identifier(product),
            "dataset": sql_identifier(domain),
            "role_prefix": f"{sql_identifier(domain)}_{sql_identifier(product)}",
            "container": product,
            "cosmos_account": f"{domain}-app"[:44],
            "gcp_project": _gcp_id(f"{domain}-lake-dev"),
            "service_account": _gcp_id(f"{product}-pipeline"),
            "managed_identity": f"mi-{domain}-{product}-relay",
            "expires": (self.today + timedelta(days=ACCESS_VALID_DAYS)).isoformat(),
            "created_ts": f"{self.today.isoformat()}T00:00:00Z",
        }

    def render(self) -> dict[str, str]:
        """File name -> content, for every file of the product."""
        env, context = _environment(), self.context()
        return {name: env.get_template(template).render(context) for template, name in PRODUCT_FILES}


def _owner(owner: str | None, domain: str) -> str:
    value = (owner or f"{domain}-data-owners@example.com").strip().lower()
    if not _OWNER.match(value):
        raise TerminalError(
            f"invalid owner {owner!r}: expected an e-mail address",
            hint="Pass the owner's e-mail, e.g. `--owner ana.souza@fintech.example`.",
        )
    return value


def scaffold_product(
    domains_dir: Path, ref: str, *, owner: str | None = None, force: bool = False, today: date | None = None
) -> list[Path]:
    """Write a new product `domains/<domain>/<product>/` that validates and runs; return the files written."""
    domain, product = parse_product_ref(ref)
    scaffold = ProductScaffold(domain, product, _owner(owner, domain), today or date.today())
    directory = domains_dir / domain / product
    if directory.exists() and (not directory.is_dir() or (not force and any(directory.iterdir()))):
        raise TerminalError(
            f"product {domain}/{product} already exists",
            location=Location(str(directory)),
            hint="Choose another name, or pass --force to overwrite its generated files.",
        )
    files = scaffold.render()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
