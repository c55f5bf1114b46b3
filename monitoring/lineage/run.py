"""The lineage events of one run around a `with` block, and the heartbeat that sends RUNNING meanwhile.

`LineageRun` emits START on entry, RUNNING every `heartbeat_seconds` (`Heartbeat`), then COMPLETE,
FAIL or ABORT through a `LineageEmitter`; lineage never fails a run, and Ctrl-C still ends it as ABORT.
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Unpack

from meshkit.errors import ConfigError, MeshkitError
from meshkit.products.model import DataProduct
from monitoring.lineage.emitter import LineageEmitter, RunArgs
from monitoring.lineage.facets import RunFigures

DEFAULT_HEARTBEAT_SECONDS = 60.0
log = logging.getLogger(__name__)


class Heartbeat:
    """Calls `beat` (emit RUNNING) every `interval` seconds from a daemon thread while the block runs.

    A failed beat is logged and the next one tries again: lineage never fails a run.
    """

    def __init__(self, beat: Callable[[], object], interval: float = DEFAULT_HEARTBEAT_SECONDS) -> None:
        if interval <= 0:
            raise ConfigError(f"lineage heartbeat interval must be positive, got {interval}")
        self.beat = beat
        self.interval = interval
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lineage-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 10.0)  # a beat mid-emit finishes before the final event

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
                self.beats += 1
            except Exception as exc:
                log.warning("lineage heartbeat not sent (%s); the next one will try again", type(exc).__name__)


class LineageRun:
    """The events of one run around a `with` block: START on entry, RUNNING every `heartbeat_seconds`,
    then COMPLETE with the `figures` set inside the block, ABORT for Ctrl-C, FAIL for any other error.

    Ctrl-C is noted by a SIGINT handler (main thread only) that then acts as the previous one did:
    Beam turns a KeyboardInterrupt raised inside its workers into its own RuntimeError, and the run
    must still end as ABORT and reach the caller as KeyboardInterrupt.
    """

    def __init__(
        self,
        emitter: LineageEmitter,
        product: DataProduct,
        stage: str,
        run_id: str | None = None,
        *,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        **run: Unpack[RunArgs],
    ) -> None:
        self.emitter, self.product, self.stage, self.run = emitter, product, stage, run
        self.run_id = run_id or str(uuid.uuid4())
        self.figures: RunFigures | None = None
        self.interrupted = False
        self._previous: Any = None
        self.heartbeat = Heartbeat(lambda: emitter.running(product, stage, self.run_id, **run), heartbeat_seconds)

    def __enter__(self) -> LineageRun:
        self.emitter.start(self.product, self.stage, self.run_id, **self.run)
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._note_interrupt)
        self.heartbeat.__enter__()
        return self

    def _note_interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.interrupted = True
        if callable(self._previous):
            self._previous(signum, frame)
        elif self._previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.heartbeat.__exit__(exc_type, exc, tb)
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if exc is None:
            self.emitter.complete(self.product, self.stage, self.run_id, figures=self.figures, **self.run)
            return
        aborted = self.interrupted or isinstance(exc, KeyboardInterrupt)
        try:  # the run's own error matters more than a lost lineage event
            if aborted:
                self.emitter.abort(self.product, self.stage, self.run_id, **self.run)
            else:
                reason = exc.reason if isinstance(exc, MeshkitError) else f"{type(exc).__name__}: {exc}"
                self.emitter.fail(self.product, self.stage, self.run_id, error=reason, **self.run)
        except Exception as lost:
            log.warning("lineage %s event not sent (%s)", "ABORT" if aborted else "FAIL", type(lost).__name__)
        if aborted and not isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
