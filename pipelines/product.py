"""What a product's `pipeline.py` declares: the standard pipeline plus the domain's own logic.

These are plain values (no Beam import), so `pipeline.py` loads fast and its functions are testable
without Beam. The runner turns them into Beam graphs.
"""

from __future__ import annotations

import importlib.util
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from meshkit.errors import ContractError, Location

BatchTransform = Callable[[pa.RecordBatch], pa.RecordBatch]
RefinedBuild = Callable[[Mapping[str, pa.Table]], pa.Table]


def identity(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch


@dataclass(frozen=True)
class ChangeFeedPipeline:
    """The standard change-feed pipeline (design steps 1-7); `transform` runs on masked Arrow batches
    after de-duplication and must return the batch with every column the contract marks `derived`."""

    transform: BatchTransform = identity


@dataclass(frozen=True)
class RefinedPipeline:
    """A refined product: `build` receives the current state of each input port (by port name) as
    Arrow tables and returns the product's table, one row per primary key."""

    build: RefinedBuild


ProductPipeline = ChangeFeedPipeline | RefinedPipeline


def load_pipeline(path: Path) -> ProductPipeline:
    """Import a product's `pipeline.py` and return its `pipeline` value; a missing file means the
    standard pipeline with no domain transform."""
    if not path.exists():
        return ChangeFeedPipeline()
    module_name = "meshkit_product_" + "_".join(path.parent.parts[-2:]).replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ContractError("cannot import the product pipeline", location=Location(str(path)))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the domain's code: report it like any other user error
        line = next(
            (f.lineno for f in reversed(traceback.extract_tb(exc.__traceback__)) if f.filename == str(path)), None
        )
        raise ContractError(
            f"pipeline.py failed to load: {type(exc).__name__}: {exc}",
            location=Location(str(path), line),
            hint="Fix the error at that line; run `python <that file>` to see the full traceback.",
        ) from exc
    value = getattr(module, "pipeline", None)
    if not isinstance(value, ChangeFeedPipeline | RefinedPipeline):
        raise ContractError(
            "pipeline.py defines no `pipeline` value",
            location=Location(str(path), field="pipeline"),
            hint="End the file with `pipeline = ChangeFeedPipeline(transform=...)` or "
            "`pipeline = RefinedPipeline(build=...)` (see `meshkit new`).",
        )
    return value
