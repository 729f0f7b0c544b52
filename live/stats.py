"""Per-stage timing, capture->sink latency and throughput of frames that reached the end of a pipeline."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from live.frames import Frame


WINDOW = 10_000  # frames the percentiles are taken over (the latest): a long-running server's memory stays bounded


def percentiles(values) -> dict[str, float]:
    """p50/p95/max of a list of milliseconds (zeros when empty)."""
    if not values:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "max_ms": 0.0, "frames": 0}
    a = np.asarray(values, dtype=np.float64)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "max_ms": round(float(a.max()), 3), "frames": int(a.size)}


class Stats:
    """Collects what the last stage delivers. Thread-safe: recorded on the last worker, read anywhere. Timings and
    latencies are kept for the latest `window` frames; counts and the rate cover every frame."""

    def __init__(self, warmup: int = 0, window: int = WINDOW):
        # warmup: frames (by arrival at the sink) left out of every number: they include lazy loading;
        # window: the latest frames the percentiles are taken over.
        self.warmup, self.window = warmup, window
        self._lock = threading.Lock()
        self._stage_ms: dict[str, deque[float]] = {}
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._arrived = 0
        self._first_ns: int | None = None  # arrival time of the first frame after warm-up
        self._last_ns: int | None = None
        self._counted = 0

    @property
    def arrived(self) -> int:
        """Frames that reached the end of the pipeline, warm-up included."""
        with self._lock:
            return self._arrived

    def record(self, frame: Frame, t_sink_ns: int | None = None) -> None:
        now = time.perf_counter_ns() if t_sink_ns is None else t_sink_ns
        with self._lock:
            self._arrived += 1
            if self._arrived <= self.warmup:
                return
            if self._first_ns is None:
                self._first_ns = now
            else:
                self._counted += 1  # intervals after the first counted frame give the rate
            self._last_ns = now
            for stage, ms in frame.timings:
                self._stage_ms.setdefault(stage, deque(maxlen=self.window)).append(ms)
            self._latency_ms.append((now - frame.t_capture_ns) / 1e6)

    def fps(self) -> float:
        with self._lock:
            if self._first_ns is None or self._last_ns is None or self._last_ns <= self._first_ns:
                return 0.0
            return self._counted / ((self._last_ns - self._first_ns) / 1e9)

    def summary(self, dropped: dict[str, int] | None = None) -> dict:
        """`{"stages": {NAME: {p50_ms, p95_ms, max_ms, frames}}, "fps", "latency_ms": {p50, p95}, "dropped"}`."""
        fps = self.fps()
        with self._lock:
            stages = {name: percentiles(ms) for name, ms in self._stage_ms.items()}
            lat = percentiles(self._latency_ms)
        return {
            "stages": stages,
            "fps": round(fps, 2),
            "latency_ms": {"p50": lat["p50_ms"], "p95": lat["p95_ms"]},
            "dropped": dict(dropped or {}),
        }


def format_summary(summary: dict) -> str:
    """The summary as a small text table for the terminal."""
    lines = [f"{'stage':<24}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'frames':>8}"]
    for name, s in summary["stages"].items():
        lines.append(f"{name:<24}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}{s['max_ms']:>9.2f}{s['frames']:>8}")
    lat = summary["latency_ms"]
    lines.append(f"throughput {summary['fps']:.1f} fps; capture->sink latency p50 {lat['p50']:.1f} ms, "
                 f"p95 {lat['p95']:.1f} ms")
    drops = ", ".join(f"{q}: {n}" for q, n in summary["dropped"].items()) or "none"
    lines.append(f"dropped frames per queue: {drops}")
    if "paced" in summary:
        p = summary["paced"]
        lines.append(f"paced: {p['stage']} started each frame just in time for {p['by']} (held back "
                     f"{p['held_s']:.1f} s in all: no work on frames that would be dropped)")
    return "\n".join(lines)
