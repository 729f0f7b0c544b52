import threading
import time

import numpy as np
import pytest

from live.frames import Frame
from live.pipeline import Pipeline
from live.stage import StageError


class CountingSource:
    """Frames 0..n-1 (n=None: endless) of a tiny image, optionally paced."""

    name = "capture"
    fps = 100.0

    def __init__(self, n=None, interval_s=0.0):
        self.n, self.interval_s, self.i = n, interval_s, 0
        self.closed = False

    def start(self):
        pass

    def read(self):
        if self.n is not None and self.i >= self.n:
            return None
        if self.interval_s:
            time.sleep(self.interval_s)
        f = Frame(seq=self.i, t_capture_ns=time.perf_counter_ns(), t_media_s=self.i / self.fps,
                  image=np.zeros((4, 4, 3), np.uint8))
        self.i += 1
        return f

    def close(self):
        self.closed = True


class Step:
    def __init__(self, name, sleep_s=0.0, fail_at=None, fail_start=False):
        self.name, self.sleep_s, self.fail_at, self.fail_start = name, sleep_s, fail_at, fail_start
        self.seen, self.started, self.closed = [], False, False

    def start(self):
        if self.fail_start:
            raise RuntimeError("model file is broken")
        self.started = True

    def process(self, frame):
        if self.fail_at is not None and len(self.seen) == self.fail_at:
            raise RuntimeError(f"bad frame after {len(self.seen)}")
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self.seen.append(frame.seq)
        return frame

    def close(self):
        self.closed = True


def live_threads():
    return [t for t in threading.enumerate() if t.name.startswith("live-")]


def run_with_timeout(pipeline, timeout=20):
    out = {}

    def target():
        try:
            out["result"] = pipeline.run()
        except StageError as exc:
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "pipeline.run() hung"
    return out


def test_clean_stop_at_end_of_input_lossless():
    a, b = Step("a"), Step("b")
    src = CountingSource(n=200)
    out = run_with_timeout(Pipeline(src, [a, b], lossless=True))
    result = out["result"]
    assert result.frames == 200 and not result.interrupted and not result.stuck
    assert b.seen == list(range(200))
    assert a.closed and b.closed and src.closed
    assert result.summary["dropped"] == {"capture->a": 0, "a->b": 0}
    assert set(result.summary["stages"]) == {"a", "b"}
    assert not live_threads()


def test_slow_stage_drops_oldest_and_latency_stays_bounded():
    slow = Step("slow", sleep_s=0.02)
    src = CountingSource(n=100, interval_s=0.002)
    out = run_with_timeout(Pipeline(src, [slow, Step("sink")]))
    summary = out["result"].summary
    assert summary["dropped"]["capture->slow"] > 50
    assert slow.seen == sorted(slow.seen)  # frames stay in order
    # Latest-only: a frame waits at most about one slow step, never for the backlog.
    assert summary["latency_ms"]["p95"] < 200
    assert summary["stages"]["slow"]["p50_ms"] >= 19


def test_stage_error_stops_everything_and_names_the_stage():
    a, b, c = Step("a"), Step("boom", fail_at=7), Step("c")
    src = CountingSource(interval_s=0.001)  # endless: only the error can stop it
    out = run_with_timeout(Pipeline(src, [a, b, c]))
    err = out["error"]
    assert err.stage == "boom" and "bad frame after 7" in str(err)
    assert a.closed and b.closed and c.closed and src.closed
    assert not live_threads()


def test_error_in_start_is_reported_before_any_frame():
    bad = Step("synthesis", fail_start=True)
    src = CountingSource(interval_s=0.001)
    out = run_with_timeout(Pipeline(src, [bad, Step("sink")]))
    assert out["error"].stage == "synthesis" and "broken" in str(out["error"])
    assert src.i == 0  # the source waited for every stage to start
    assert not live_threads()


def test_stop_from_another_thread_ends_an_endless_run():
    sink = Step("sink")
    p = Pipeline(CountingSource(interval_s=0.001), [sink])
    threading.Timer(0.3, p.stop).start()
    result = run_with_timeout(p)["result"]
    assert result.interrupted and result.frames > 10
    assert not live_threads()


def test_warmup_frames_are_left_out():
    sink = Step("sink")
    result = run_with_timeout(Pipeline(CountingSource(n=30), [sink], lossless=True, warmup=10))["result"]
    assert result.frames == 30
    assert result.summary["stages"]["sink"]["frames"] == 20


def test_pipeline_needs_a_stage():
    with pytest.raises(ValueError):
        Pipeline(CountingSource(n=1), [])


def test_stats_keep_the_latest_window_of_frames():
    """A long-running pipeline (a server's peer) keeps bounded timings: the percentiles cover the latest frames,
    the count and the rate every frame."""
    from live.stats import Stats

    stats = Stats(window=5)
    for i in range(20):
        f = Frame(seq=i, t_capture_ns=0, t_media_s=i / 25, image=np.zeros((2, 2, 3), np.uint8),
                  timings=(("work", float(i)),))
        stats.record(f, t_sink_ns=(i + 1) * 1_000_000)
    s = stats.summary()
    assert stats.arrived == 20 and s["stages"]["work"]["frames"] == 5
    assert s["stages"]["work"]["max_ms"] == 19.0 and s["stages"]["work"]["p50_ms"] == 17.0  # frames 15..19
    assert s["latency_ms"]["p50"] == 18.0
