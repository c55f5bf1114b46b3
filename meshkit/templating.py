"""The one way meshkit renders report templates: Jinja2 files beside the code that uses them.

`*.html.j2` templates autoescape (report pages show names and reasons that come from users);
Markdown and other text templates escape through their own filters. Undefined variables are errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


def report_environment(templates_dir: Path, filters: Mapping[str, Callable[..., Any]] | None = None) -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(filters or {})
    return env
