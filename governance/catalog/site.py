"""Render the catalog: a static site (index with client-side search, one page per product) or JSON.

The site works from file:// with no server and no network: CSS and the one small hand-written
script (`templates/search.js`) are inline, allowed by a Content-Security-Policy hash; the search
index is JSON embedded in the index page. Pages are autoescaped and byte-for-byte deterministic for
the same repository, runs and clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment
from markupsafe import Markup

from governance.catalog.model import Catalog, ProductEntry
from governance.review import filters
from meshkit.errors import ConfigError
from meshkit.templating import report_environment
from monitoring.slo.derive import human_duration

TEMPLATES_DIR = Path(__file__).parent / "templates"
INDEX_PAGE = "index.html"
JSON_FILE = "catalog.json"
REVIEW_PAGE = "review.html"  # governance.review.formats writes it into the reports folder
Format = Literal["html", "json"]
FORMATS: tuple[Format, ...] = ("html", "json")
# characters that would end a <script> element or open markup inside it; JSON allows their \u escapes
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


@cache
def _environment() -> Environment:
    return report_environment(
        TEMPLATES_DIR,
        {
            "duration": filters.duration,
            "thousands": lambda n: f"{n:,}",
            "percent": filters.percent,
            "threshold": human_duration,
        },
    )


@cache
def _script() -> tuple[Markup, str]:
    """The search script and its CSP source (`sha256-…` of the exact text between the tags)."""
    text = (TEMPLATES_DIR / "search.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Markup(text), f"sha256-{digest}"  # noqa: S704 - our own file, no user input


def page_path(ref: str) -> str:
    """Where a product's page lives in the site, relative to its root."""
    domain, _, name = ref.partition("/")
    return f"products/{domain}/{name}.html"


def search_index(catalog: Catalog) -> list[dict[str, Any]]:
    """What the client-side search matches: names, descriptions, columns, tags, owners (lower case)."""
    entries = []
    for p in catalog.products:
        words = [p.ref, p.name, p.title, p.description, p.usage, p.owner, p.team, p.table, p.contract_id]
        words += [*p.tags, *(c.name for c in p.columns), *(c.description for c in p.columns)]
        words += [port.name for port in p.ports]
        entries.append(
            {
                "ref": p.ref,
                "domain": p.domain,
                "status": p.status or "",
                "classifications": list(p.classifications),
                "columns": [c.name for c in p.columns],
                "text": " ".join(w for w in words if w).lower(),
            }
        )
    return entries


def _script_json(value: Any) -> Markup:
    """JSON safe inside a <script> element (no `</script>`, no markup), compact and key-sorted."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.translate(_SCRIPT_SAFE))  # noqa: S704 - every markup character is escaped above


def render_index(catalog: Catalog) -> str:
    script, script_hash = _script()
    return (
        _environment()
        .get_template("index.html.j2")
        .render(
            catalog=catalog,
            pages={p.ref: page_path(p.ref) for p in catalog.products},
            index_json=_script_json(search_index(catalog)),
            script=script,
            script_hash=script_hash,
        )
    )


def render_product(catalog: Catalog, entry: ProductEntry, links: dict[str, str | None]) -> str:
    """A product's page; `links` holds `contract` and `review` hrefs relative to the page (or None)."""
    here = Path(page_path(entry.ref)).parent
    return (
        _environment()
        .get_template("product.html.j2")
        .render(
            entry=entry,
            judged_at=catalog.judged_at,
            index_page=_relative(Path(INDEX_PAGE), here),
            pages={p.ref: _relative(Path(page_path(p.ref)), here) for p in catalog.products},
            links=links,
            script_hash=None,
        )
    )


def _relative(target: Path, start: Path) -> str:
    """A forward-slash href from the folder `start` to `target` (both relative to one base)."""
    return Path(os.path.relpath(target, start)).as_posix()


def entry_dict(entry: ProductEntry) -> dict[str, Any]:
    """One product with stable keys, as the JSON format and the Dataplex dry run show it."""
    data = asdict(entry)
    data["last_run"] = entry.last_run.to_dict() if entry.last_run else None
    data["slos"] = entry.slos.to_dict() if entry.slos else None
    data["classification_counts"] = entry.classification_counts
    data["quality_state"] = entry.quality_state
    for rule, shown in zip(entry.quality, data["quality"], strict=True):
        shown["state"] = rule.state
    return data


def render_json(catalog: Catalog) -> str:
    document = {
        "judged_at": catalog.judged_at,
        "lineage_source": catalog.lineage_source,
        "products": [entry_dict(p) for p in catalog.products],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_catalog(
    catalog: Catalog, out_dir: Path, fmt: str = "html", *, root: Path, reports_dir: Path | None = None
) -> list[Path]:
    """Write the site (index.html and products/<domain>/<product>.html) or catalog.json into `out_dir`.
    A site inside `root` links each contract file, and `reports_dir`/review.html when it exists."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown catalog format {fmt!r}", hint=f"Valid values are: {', '.join(FORMATS)}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir, root = out_dir.resolve(), root.resolve()
    if fmt == "json":
        path = out_dir / JSON_FILE
        path.write_text(render_json(catalog), encoding="utf-8")
        return [path]
    index = out_dir / INDEX_PAGE
    index.write_text(render_index(catalog), encoding="utf-8")
    written = [index]
    review = reports_dir.resolve() / REVIEW_PAGE if reports_dir is not None else None
    # links into the repository only from a site inside it: a relative path out of it names this machine's folders
    inside = out_dir.is_relative_to(root) and (review is None or review.is_relative_to(root))
    for entry in catalog.products:
        page = out_dir / page_path(entry.ref)
        page.parent.mkdir(parents=True, exist_ok=True)
        links: dict[str, str | None] = {
            "contract": _relative(root / entry.contract_file, page.parent) if inside else None,
            "review": f"{_relative(review, page.parent)}#{entry.ref}"
            if inside and review and review.is_file()
            else None,
        }
        page.write_text(render_product(catalog, entry, links), encoding="utf-8")
        written.append(page)
    return written
