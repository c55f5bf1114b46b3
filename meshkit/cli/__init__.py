"""The `meshkit` command: a thin shell over library functions.

Each sub-command is one module `meshkit.cli.<verb>` with `add_arguments(parser)` and `run(args)`.
Command modules import nothing heavy at module level; Beam and cloud SDKs load inside `run`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from meshkit import __version__
from meshkit.errors import MeshkitError

# verb -> (module, one-line help); order is the order `--help` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "new": ("meshkit.cli.new", "scaffold a data product: meshkit new <domain>/<product>"),
    "validate": ("meshkit.cli.validate", "validate contracts and product descriptors"),
    "diff": ("meshkit.cli.diff", "breaking-change and semver gate: contract changes since a git revision"),
    "simulate": ("meshkit.cli.simulate", "simulate a product's Cosmos DB change feed (file or event log)"),
    "relay": ("meshkit.cli.relay", "relay a product's Cosmos DB change feed onto the event bus, checkpointed"),
    "run": ("meshkit.cli.run", "run a product's Beam pipeline (DirectRunner locally)"),
    "demo": ("meshkit.cli.demo", "run the whole mesh end to end on the local profile"),
    "review": ("meshkit.cli.review", "write the governance review report (HTML, Markdown)"),
    "cost": ("meshkit.cli.cost", "monthly cost per product and for the mesh; monitoring share; SFTP comparison"),
    "dashboard": ("meshkit.cli.dashboard", "write the local dashboard: freshness, throughput, dead letters, budgets"),
    "lineage": ("meshkit.cli.lineage", "draw the mesh lineage graph from OpenLineage events (HTML, Mermaid, JSON)"),
    "slo": ("meshkit.cli.slo", "SLO status (error budgets, burn rates) and OpenSLO export from the contracts"),
    "iam": (
        "meshkit.cli.iam",
        "a product's grants (purpose, expiry) and the GCP IAM / Azure RBAC bindings they become",
    ),
    "infra": ("meshkit.cli.infra", "generate a product's Terraform stack; `infra check <dir>`: policies + checkov"),
    "access": ("meshkit.cli.access", "who has what access: the effective access matrix and drift against live IAM"),
    "schema": ("meshkit.cli.schema", "a product's BigQuery schema JSON, Arrow schema or DDL, from its contract"),
    "test": ("meshkit.cli.test", "run the contract's checks where the product's data lives (SQL pushdown)"),
    "catalog": ("meshkit.cli.catalog", "the searchable data product catalog (static HTML, JSON); Dataplex export"),
    "drift": ("meshkit.cli.drift", "schema drift of a document source against its contract, with the proposed change"),
    "import": ("meshkit.cli.import_", "draft a contract from BigQuery, Cosmos DB, PostgreSQL or an Avro schema"),
    "export": ("meshkit.cli.export", "a contract as JSON Schema, Avro, BigQuery DDL or dbt sources"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshkit",
        description="Data products from ODCS contracts to governed pipelines across Azure and GCP.",
    )
    parser.add_argument("--version", action="version", version=f"meshkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--root", default=None, help="project root holding domains/ (default: current folder)")
    parser.add_argument("--profile", default=None, help="local | emulators | cloud (default: local)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for verb, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(verb, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


_CONSOLE_HANDLER = "meshkit-console"
_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
# Beam logs a failing DoFn with its traceback at ERROR and then re-raises it; the runner turns the
# exception into a MeshkitError, which `main` prints as one `Error:` line.
_BEAM_DOFN_FAILURE_LOGGER = "apache_beam.runners.common"


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record arrives (tests swap it per test)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


class _BriefFormatter(logging.Formatter):
    """One line per record: tracebacks belong to `--debug`."""

    def formatException(self, ei: object) -> str:  # noqa: N802 - logging's spelling
        return ""

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's spelling
        return ""


def _not_a_reraised_dofn_failure(record: logging.LogRecord) -> bool:
    return not (record.name == _BEAM_DOFN_FAILURE_LOGGER and record.exc_info and record.levelno >= logging.ERROR)


def configure_logging(debug: bool) -> None:
    """Console logging for one command: warnings on one line each by default; INFO and full
    tracebacks (Beam's included) with --debug. Installing a root handler also makes Beam's own
    `logging.basicConfig()` a no-op."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _CONSOLE_HANDLER), None)
    if handler is None:
        handler = _ConsoleHandler()
        handler.set_name(_CONSOLE_HANDLER)
        root.addHandler(handler)
    level = logging.INFO if debug else logging.WARNING
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT) if debug else _BriefFormatter(_LOG_FORMAT))
    handler.filters.clear()
    if not debug:
        handler.addFilter(_not_a_reraised_dofn_failure)
    root.setLevel(level)
    logging.getLogger("apache_beam").setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    configure_logging(args.debug)
    try:
        code: int = args._module.run(args)
    except MeshkitError as exc:
        if args.debug:
            raise
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:
        # not a mistake we anticipated: still no traceback unless asked for (design: errors are for people)
        if args.debug:
            raise
        first_line = (str(exc).splitlines() or [""])[0][:300]
        print(
            f"Error: unexpected {type(exc).__name__}: {first_line}. This is a bug in meshkit or in the "
            "product's own code; run again with --debug for the traceback.",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
