"""The `meshkit` command: a thin shell over library functions.

Each sub-command is one module `meshkit.cli.<verb>` with `add_arguments(parser)` and `run(args)`.
Command modules import nothing heavy at module level; Beam and cloud SDKs load inside `run`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from meshkit import __version__
from meshkit.errors import MeshkitError

# verb -> (module, one-line help); order is the order `--help` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "new": ("meshkit.cli.new", "scaffold a data product: meshkit new <domain>/<product>"),
    "validate": ("meshkit.cli.validate", "validate contracts and product descriptors"),
    "run": ("meshkit.cli.run", "run a product's Beam pipeline (DirectRunner locally)"),
    "demo": ("meshkit.cli.demo", "run the whole mesh end to end on the local profile"),
    "review": ("meshkit.cli.review", "write the governance review report (HTML, Markdown)"),
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        code: int = args._module.run(args)
    except MeshkitError as exc:
        if args.debug:
            raise
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
