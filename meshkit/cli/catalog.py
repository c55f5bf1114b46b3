"""`meshkit catalog`: write the searchable data product catalog (static HTML or JSON), or export the
products to Dataplex Catalog (`--export dataplex`, cloud profile; `--dry-run` prints the requests)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meshkit.cli._common import settings_from
from meshkit.errors import ConfigError

FORMATS = ("html", "json")
EXPORTS = ("dataplex",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, metavar="DIR", help="folder for the site (default: <reports>/catalog)")
    parser.add_argument("--format", choices=FORMATS, default="html", help="html: the static site (default); json")
    parser.add_argument(
        "--export", choices=EXPORTS, default=None, help="export entries and aspects to Dataplex Catalog instead"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="with --export: print the requests as JSON, send nothing"
    )


def run(args: argparse.Namespace) -> int:
    from governance.catalog.model import build_catalog

    settings = settings_from(args)
    catalog = build_catalog(settings)
    if args.export == "dataplex":
        from governance.catalog.dataplex import export_catalog, plan_export

        plan = plan_export(catalog, settings)
        if args.dry_run:
            print(json.dumps(plan.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))
            return 0
        if settings.profile != "cloud":
            raise ConfigError(
                f"the Dataplex export runs on the cloud profile (this is {settings.profile!r})",
                hint="Run with --profile cloud (and gcp_project set), or add --dry-run to see the requests.",
            )
        result = export_catalog(plan)
        for name in result.entries:
            print(name)
        print(f"{len(result.entries)} entries exported; created {', '.join(result.created) or 'no new'} resources")
        return 0
    from governance.catalog.site import write_catalog

    out = Path(args.out) if args.out else settings.reports_dir / "catalog"
    paths = write_catalog(catalog, out, args.format, root=settings.root, reports_dir=settings.reports_dir)
    print(paths[0])
    print(f"{len(catalog.products)} products in {len(catalog.domains)} domains")
    return 0
