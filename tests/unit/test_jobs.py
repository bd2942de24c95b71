"""The job runner: every job on its own thread, at once and then every interval; a failure
is logged and the next round still runs."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest

from keyplane.jobs import JobRunner, Periodic
from keyplane.metrics import PrometheusMetrics

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class CountingJob:
    def __init__(self, name: str, *, fail: bool = False, interval: float | None = None) -> None:
        self.name = name
        self.interval = interval
        self.seen: list[datetime] = []
        self.ran = threading.Event()
        self._fail = fail

    def run(self, now: datetime) -> int:
        self.seen.append(now)
        self.ran.set()
        if self._fail:
            raise RuntimeError("the database is down")
        return 2


def test_each_job_runs_as_soon_as_the_runner_starts_with_the_clock() -> None:
    first, second = CountingJob("first"), CountingJob("second")
    runner = JobRunner([first, second], clock=lambda: NOW, interval=3600)
    runner.start()
    try:
        assert first.ran.wait(5)
        assert second.ran.wait(5)
        assert runner.running
    finally:
        runner.stop()
    assert first.seen == [NOW]
    assert second.seen == [NOW]
    assert not runner.running


def test_a_failing_job_is_logged_and_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, fine = CountingJob("broken", fail=True), CountingJob("fine")
    runner = JobRunner([broken, fine], clock=lambda: NOW, interval=3600)
    with caplog.at_level(logging.ERROR, logger="keyplane.jobs"):
        assert runner.run_once() == {"fine": 2}
    assert broken.seen == [NOW]
    assert "job broken failed" in caplog.text


def test_a_job_runs_again_after_its_own_interval_and_after_a_failure() -> None:
    job = CountingJob("fast", fail=True, interval=0.01)
    runner = JobRunner([job], clock=lambda: NOW, interval=3600)
    runner.start()
    try:
        for _ in range(3):
            job.ran.clear()
            assert job.ran.wait(5)
    finally:
        runner.stop()
    assert len(job.seen) >= 3


def test_wake_runs_the_named_job_before_its_interval_ends() -> None:
    job = CountingJob("deliver")
    runner = JobRunner([job], clock=lambda: NOW, interval=3600)
    runner.start()
    try:
        assert job.ran.wait(5)
        job.ran.clear()
        runner.wake("deliver")
        assert job.ran.wait(5)
    finally:
        runner.stop()
    assert len(job.seen) == 2


def test_periodic_stops_promptly_even_in_a_long_wait() -> None:
    calls: list[int] = []
    periodic = Periodic("slow", lambda: calls.append(1), 3600)
    periodic.start()
    periodic.stop(timeout=5)
    assert not periodic.running
    assert calls == []


def test_each_round_is_counted_by_job_and_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = PrometheusMetrics()
    runner = JobRunner(
        [CountingJob("broken", fail=True), CountingJob("fine")],
        clock=lambda: NOW,
        interval=3600,
        metrics=metrics,
    )
    runner.run_once()
    runner.run_once()
    text = metrics.exposition().decode()
    metrics.close()
    assert 'keyplane_job_runs_total{job="broken",outcome="error"} 2.0' in text
    assert 'keyplane_job_runs_total{job="fine",outcome="ok"} 2.0' in text
