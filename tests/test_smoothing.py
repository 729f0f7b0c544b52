import math

import numpy as np
import pytest

from live.landmarker import matrix_to_pose
from live.smoothing import OneEuro, SignalSmoother


def test_one_euro_reduces_jitter_on_a_still_signal():
    rng = np.random.default_rng(0)
    f = OneEuro(min_cutoff=1.0, beta=0.0)
    raw = 5.0 + rng.normal(0, 1.0, size=300)
    out = np.array([f(np.array([v]), i / 30)[0] for i, v in enumerate(raw)])
    assert out[30:].std() < 0.4 * raw[30:].std()
    assert abs(out[30:].mean() - 5.0) < 0.2


def test_one_euro_follows_a_step_with_high_beta_faster():
    def settle(beta):
        f = OneEuro(min_cutoff=1.0, beta=beta)
        for i in range(10):
            f(np.array([0.0]), i / 30)
        for i in range(10, 40):
            if f(np.array([10.0]), i / 30)[0] > 9.0:
                return i - 10
        return 99

    assert settle(beta=5.0) < settle(beta=0.0)


def test_strength_zero_is_passthrough_and_negative_is_refused():
    s = SignalSmoother(0)
    x = np.array([1.0, 2.0])
    assert not s.enabled and np.array_equal(s("angles", x, 0.0), x) and np.array_equal(s("angles", x * 3, 0.01), x * 3)
    with pytest.raises(ValueError):
        SignalSmoother(-1)


def _rot(yaw, pitch, roll):
    y, p, r = map(math.radians, (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = 1.3 * (rz @ ry @ rx)  # with a scale, as MediaPipe's matrix has
    return m


@pytest.mark.parametrize("angles", [(0, 0, 0), (20, 0, 0), (0, 15, 0), (0, 0, -10), (25, -12, 7)])
def test_matrix_to_pose_recovers_angles(angles):
    yaw, pitch, roll = matrix_to_pose(_rot(*angles))
    # The tracking stage reports chin-up as positive pitch: MediaPipe's x rotation has the opposite sign.
    assert (round(yaw, 6), round(pitch, 6), round(roll, 6)) == pytest.approx((angles[0], -angles[1], angles[2]))


def test_blendshapes_follow_a_blink_without_lagging_it():
    """A 100 ms blink at 30 fps: the blendshape filter's summed error stays under a quarter of the blink
    (with its speed estimate at 1 Hz, as the other signals have, it lagged the eye's reopening: 0.36)."""
    blink = np.array([0.0] * 10 + [0.3, 0.6, 0.6, 0.3] + [0.0] * 6)
    s = SignalSmoother(1.0)
    out = np.array([s("blendshapes", np.array([v]), i / 30)[0] for i, v in enumerate(blink)])
    assert np.abs(out - blink).sum() < 0.25 * blink.sum()
    assert out[10:14].max() > 0.55  # the peak still shows
