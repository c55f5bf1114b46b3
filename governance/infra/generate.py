"""`meshkit infra <product>` and `meshkit iam <product>`: the access plan and the stack written out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from governance.iam.grants import DEFAULT_GRACE_DAYS
from governance.iam.model import ProductAccess
from governance.iam.plan import product_access
from governance.infra.dataflow import flex_template
from governance.infra.stack import product_stack
from meshkit.config import Settings
from meshkit.products.discovery import find_product

MODULES_DIR = Path("terraform") / "modules"


@dataclass(frozen=True)
class GeneratedStack:
    access: ProductAccess
    out: Path
    written: tuple[Path, ...]


def access_plan(settings: Settings, ref: str, *, today: date, grace_days: int = DEFAULT_GRACE_DAYS) -> ProductAccess:
    return product_access(find_product(settings.domains_dir, ref), settings, today=today, grace_days=grace_days)


def default_out(settings: Settings, access: ProductAccess) -> Path:
    r = access.resources
    return settings.build_dir / r.domain / r.name / "terraform"


def template_out(settings: Settings, access: ProductAccess) -> Path:
    """build/<domain>/<product>/dataflow: the Flex Template spec and the image's Dockerfile."""
    r = access.resources
    return settings.build_dir / r.domain / r.name / "dataflow"


def generate_stack(
    settings: Settings,
    ref: str,
    *,
    today: date,
    out: Path | None = None,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> GeneratedStack:
    """Write the product's stack (default build/<domain>/<product>/terraform) and its Flex Template
    (build/<domain>/<product>/dataflow), and return what was written."""
    access = access_plan(settings, ref, today=today, grace_days=grace_days)
    target = out or default_out(settings, access)
    stack = product_stack(
        access,
        out=target,
        modules_dir=settings.root / MODULES_DIR,
        today=today.isoformat(),
        grace_days=grace_days,
    )
    template = flex_template(settings, access.grants.product, access.resources.project)
    written = [*stack.write(target), *template.write(template_out(settings, access))]
    return GeneratedStack(access, target, tuple(written))
