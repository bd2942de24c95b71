"""Charts drawn on the server as SVG: no script, no library, nothing from a CDN, and
nothing for the Content-Security-Policy to allow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from keyplane.domain.usage import UsagePoint

# Drawing order (bottom up) and CSS class per outcome; an unknown one draws as "other".
OUTCOMES = ("VALID", "INSUFFICIENT_SCOPE", "NOT_FOUND", "DISABLED", "EXPIRED")


@dataclass(frozen=True, slots=True)
class Segment:
    outcome: str
    count: int
    y: float
    height: float


@dataclass(frozen=True, slots=True)
class Bar:
    start: datetime
    x: float
    width: float
    total: int
    segments: list[Segment]


@dataclass(frozen=True, slots=True)
class StackedBars:
    width: int
    height: int
    peak: int
    bars: list[Bar]


def stacked_bars(points: list[UsagePoint], width: int = 720, height: int = 160) -> StackedBars:
    """One bar per point, its outcomes stacked in OUTCOMES order, scaled to the busiest."""
    peak = max((sum(p.counts.values()) for p in points), default=0)
    step = width / max(len(points), 1)
    bars = []
    for index, point in enumerate(points):
        ordered = sorted(
            point.counts.items(),
            key=lambda item: OUTCOMES.index(item[0]) if item[0] in OUTCOMES else len(OUTCOMES),
        )
        y = float(height)
        segments = []
        for outcome, count in ordered:
            h = height * count / peak if peak else 0.0
            y -= h
            segments.append(Segment(outcome, count, round(y, 2), round(h, 2)))
        total = sum(point.counts.values())
        bars.append(Bar(point.start, round(index * step, 2), round(step * 0.8, 2), total, segments))
    return StackedBars(width, height, peak, bars)
