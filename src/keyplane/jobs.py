"""Background work in threads: periodic flushes of this process's buffers, and the jobs.

``Periodic`` calls one function every ``interval`` seconds from a daemon thread until
stopped (the usage buffers in ``memory.py`` and ``usage.py`` flush through it).
``JobRunner`` runs the lifecycle jobs (expiry purge, warnings, webhook delivery, usage
retention): one ``Periodic`` per job, so a slow job (a webhook endpoint taking its 10 s)
never delays another. It runs inside ``keyplane serve`` (unless ``KEYPLANE_RUN_JOBS=false``)
and as ``keyplane worker``; several runners on one database are safe because every job is
idempotent and claims its rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the
write lock serialises them).

Jobs are plain synchronous code on their own threads: they never touch the event loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from keyplane.domain.ports import Clock, Job, Metrics
from keyplane.metrics import NullMetrics

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``action`` every ``interval`` seconds on a daemon thread.

    ``first`` calls it once as soon as the thread starts (a job should not wait a whole
    interval after a restart). ``wake()`` runs the next round now instead of at the end of
    the wait. An exception is logged and the next round runs as planned: the thread never
    dies of one failure.
    """

    def __init__(
        self, name: str, action: Callable[[], object], interval: float, *, first: bool = False
    ) -> None:
        self.name = name
        self._action = action
        self._interval = interval
        self._first = first
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _run(self) -> None:
        if self._first:
            self._call()
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._call()

    def _call(self) -> None:
        try:
            self._action()
        except Exception:
            log.exception("%s failed; it runs again in %.0f s", self.name, self._interval)


class JobRunner:
    """Runs each job every ``interval`` seconds (or the job's own ``interval``), each on its
    own thread, between ``start`` and ``stop``; ``run_once`` runs every job once, in order,
    on the caller's thread (tests, and ``keyplane worker --once``)."""

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        clock: Clock,
        interval: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.jobs = tuple(jobs)
        self._clock = clock
        self._metrics = metrics or NullMetrics()
        self._threads = [
            Periodic(
                f"keyplane-job-{job.name}",
                self._runner(job),
                job.interval if job.interval is not None else interval,
                first=True,
            )
            for job in self.jobs
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for thread in self._threads:
            thread.stop(timeout=15.0)  # a delivery in flight may take its whole 10 s timeout

    def wake(self, name: str) -> None:
        """Runs the named job now (e.g. deliver a webhook written a moment ago)."""
        for job, thread in zip(self.jobs, self._threads, strict=True):
            if job.name == name:
                thread.wake()

    @property
    def running(self) -> bool:
        return any(thread.running for thread in self._threads)

    def run_once(self) -> dict[str, int]:
        """Every job once; how many items each handled. A failing job is logged and the
        others still run."""
        done: dict[str, int] = {}
        for job in self.jobs:
            try:
                done[job.name] = self._counted(job)
            except Exception:
                log.exception("job %s failed", job.name)
        return done

    def _runner(self, job: Job) -> Callable[[], object]:
        def run() -> object:
            handled = self._counted(job)
            if handled:
                log.info("job %s handled %d", job.name, handled)
            return handled

        return run

    def _counted(self, job: Job) -> int:
        """One round of ``job``, counted by outcome (its exception goes on to the caller)."""
        try:
            handled = job.run(self._clock())
        except Exception:
            self._metrics.job_ran(job.name, "error")
            raise
        self._metrics.job_ran(job.name, "ok")
        return handled
