"""The Pacer: the first stage starts a frame just in time for the slowest one (live/pacing.py)."""

import threading

import pytest

from live.pacing import Pacer
from live.pipeline import Pipeline
from live.stats import format_summary
from tests.test_pipeline import CountingSource, Step, run_with_timeout


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def pacer_with(times, margin_s=0.005):
    clock = Clock()
    pacer = Pacer(len(times), margin_s=margin_s, clock=clock)
    for i, t in enumerate(times):
        pacer.done(i, t)
    return pacer, clock


def due(pacer, clock):
    """Seconds from now until the first stage may start (0: at once)."""
    return max(0.0, pacer._due - clock.now)


def test_nothing_waits_until_every_stage_has_a_typical_time():
    clock = Clock()
    pacer = Pacer(3, clock=clock)
    pacer.done(0, 0.02)
    pacer.done(2, 0.08)  # stage 1 has no time yet
    pacer.took(0)
    pacer.took(2)
    assert pacer.slowest() is None and due(pacer, clock) == 0.0


def test_the_slowest_stage_taking_a_frame_sets_when_the_next_one_starts():
    # tracking 20 ms, encoder 1 ms, synthesis 80 ms, sink 0.1 ms
    pacer, clock = pacer_with([0.020, 0.001, 0.080, 0.0001])
    assert pacer.slowest() == 2
    pacer.took(2)
    # synthesis is free in 80 ms; the frame needs 21 ms to get there, and 5 ms of margin
    assert due(pacer, clock) == pytest.approx(0.080 - 0.021 - 0.005)
    pacer.took(1)  # a middle stage does not move it
    pacer.took(3)
    assert due(pacer, clock) == pytest.approx(0.054)


def test_the_first_stage_starts_at_most_one_frame_per_slow_period():
    pacer, clock = pacer_with([0.020, 0.080])
    pacer.took(0)
    assert due(pacer, clock) == pytest.approx(0.080)  # a frame lost on the way does not stall it forever
    clock.now += 0.021
    pacer.took(1)  # synthesis took that frame: it is now what says when the next one starts
    assert due(pacer, clock) == pytest.approx(0.080 - 0.020 - 0.005)


def test_a_first_stage_that_is_itself_the_slowest_is_never_held():
    pacer, clock = pacer_with([0.090, 0.001, 0.050])
    pacer.took(0)
    pacer.took(2)
    assert pacer.slowest() == 0 and due(pacer, clock) == 0.0


def test_typical_times_are_medians_so_one_slow_frame_does_not_hold_tracking_back():
    pacer, _ = pacer_with([0.020, 0.080])
    pacer.done(1, 2.0)  # e.g. a frame that loaded something
    pacer.done(1, 0.080)
    assert pacer.typical() == pytest.approx([0.020, 0.080])


def test_wait_blocks_until_due_and_ends_on_stop():
    pacer = Pacer(2, margin_s=0.0)
    pacer.done(0, 0.001)
    pacer.done(1, 30.0)
    pacer.took(1)  # the first stage is due in ~30 s
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    waiter = threading.Thread(target=pacer.wait, args=(stop, 0.05))
    waiter.start()
    waiter.join(5)
    assert not waiter.is_alive() and 0.15 < pacer.waited_s < 5


def test_a_pacer_needs_a_stage():
    with pytest.raises(ValueError, match="at least one stage"):
        Pacer(0)


@pytest.mark.parametrize("pace", [False, True])
def test_paced_pipeline_tracks_only_frames_the_slow_stage_takes(pace):
    # A source at ~250 fps, a fast first stage (5 ms) and a slow one (40 ms): unpaced, the first stage
    # works on ~8 frames per slow frame and the slow stage's queue drops the rest; paced, it works on
    # about one per slow frame, and the drops move in front of it, where they cost nothing.
    fast, slow = Step("tracking", sleep_s=0.005), Step("synthesis", sleep_s=0.04)
    src = CountingSource(n=300, interval_s=0.004)
    result = run_with_timeout(Pipeline(src, [fast, slow, Step("sink")], pace=pace))["result"]
    dropped = result.summary["dropped"]["tracking->synthesis"]
    assert len(slow.seen) >= 10
    if pace:
        assert dropped <= 0.25 * len(slow.seen)
        assert len(fast.seen) <= 1.5 * len(slow.seen)
        assert result.summary["paced"]["by"] == "synthesis" and result.summary["paced"]["held_s"] > 0
    else:
        assert dropped >= 2 * len(slow.seen)
        assert "paced" not in result.summary
    assert fast.seen == sorted(fast.seen)


def test_the_summary_says_who_was_paced_by_whom():
    result = run_with_timeout(Pipeline(CountingSource(n=120, interval_s=0.004),
                                       [Step("tracking", sleep_s=0.002), Step("synthesis", sleep_s=0.03)]))["result"]
    text = format_summary(result.summary)
    assert "paced: tracking started each frame just in time for synthesis" in text
    lossless = run_with_timeout(Pipeline(CountingSource(n=20), [Step("a"), Step("b")], lossless=True))["result"]
    assert "paced" not in lossless.summary and "paced:" not in format_summary(lossless.summary)
