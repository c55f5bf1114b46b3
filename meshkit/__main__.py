"""`python -m meshkit` is the `meshkit` command."""

from __future__ import annotations

import sys

from meshkit.cli import main

sys.exit(main())
