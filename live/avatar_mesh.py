"""The avatar's face mesh as its render shows it, predicted from the latent offset instead of tracked per frame.

The warp needs to know where the rendered face's points are and how far the latent already moved them. Tracking
every render with MediaPipe costs ~10-15 ms on two cores and adds MediaPipe's jitter to the warp. The offset the
encoder asks is a combination of a few directions (each expression direction, the head's yaw and pitch rows, the
emotion edit), so at start the avatar is rendered along each of them at a few amplitudes and tracked once (IMAGE
mode: each render on its own, no tracking history). A frame's mesh is then the neutral's plus, per direction, the
displacement interpolated at the offset's coordinate along it (piecewise linear through the probes, the end
segments extended), turned by the frame's roll as the synthesis stage turns the image. Directions are taken to
add, which holds to about a pixel at 256² (generated face 1: the jaw at 1.2 alone is predicted within 0.3 px of
MediaPipe's reading, 3.0 px from rest; with a smile and 9° of yaw on top, 1.3 px of 3.7; over real clips 0.7 px of
the 2.3 px the latent moves, where MediaPipe's VIDEO and IMAGE modes differ by 0.8 px on the same render:
benchmarks/avatar_mesh_check.py, QUALITY.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from live.image_steps import MIN_ROLL_DEG, roll_matrix

log = logging.getLogger(__name__)

HEAD_PROBES_DEG = (8.0, 16.0, 24.0)  # yaw and pitch probed at these angles, both signs
EMOTION_PROBES = (1.5, 3.0)  # the emotion edit's alpha, both signs (the control's range is -3..3)


@dataclass(frozen=True)
class Direction:
    """One way the offset moves the avatar: a unit of it (vector [K*512]) and the coordinates it is probed at (none:
    the encoder never moves along it; it stays in the basis so that the others' coordinates are right)."""

    name: str
    vector: np.ndarray
    amplitudes: tuple[float, ...]


def encoder_directions(encoder, emotion: np.ndarray | None) -> list[Direction] | None:
    """The directions a calibrated encoder's offsets are made of: expression directions probed at each quarter of
    their coefficients' range (a jaw can stay shut up to ~0.7 and then open fast), every head row the map uses at
    HEAD_PROBES_DEG, and the emotion edit. None for an encoder without them (the linear baseline: its offsets span
    the whole map, nothing to probe)."""
    from live.models.encoder import POSE_SCALE, SIGNAL_INDEX

    response = getattr(encoder, "response", None)
    if response is None:
        return None
    out = []
    for name, direction, ys in zip(response.names, response.directions, response.curve_y):
        lo, hi = float(ys.min()), float(ys.max())
        amps = sorted({round(e * q / 4, 4) for e in (lo, hi) for q in range(1, 5) if abs(e) > 1e-3})
        out.append(Direction(name, direction.reshape(-1).astype(np.float32), tuple(amps)))
    names = {i: n for n, i in SIGNAL_INDEX.items()}
    for row in np.nonzero(np.abs(response.matrix).sum(1))[0]:
        amps = tuple(sorted(s * d / POSE_SCALE for d in HEAD_PROBES_DEG for s in (-1, 1)))
        out.append(Direction(names.get(int(row), f"signal {row}"), response.matrix[row].astype(np.float32), amps))
    if emotion is not None:
        amps = tuple(sorted(s * a for a in EMOTION_PROBES for s in (-1, 1)))
        out.append(Direction("emotion", np.asarray(emotion, np.float32).reshape(-1), amps))
    return out


class AvatarMesh:
    """[478,3] pixels of the rendered avatar for an offset [1,K,512] and a roll."""

    def __init__(self, neutral: np.ndarray, directions: list[Direction], displacements: list[np.ndarray],
                 size: int):
        # neutral: the mesh at rest; displacements[i]: [A_i,478,3] mesh minus neutral at directions[i].amplitudes;
        # size: the render's side in pixels (the roll turns about its centre).
        self.neutral, self.directions, self.size = neutral, directions, size
        basis = np.stack([d.vector for d in directions]).astype(np.float64)
        self._solve = np.linalg.pinv(basis).astype(np.float32)  # [D,B]: offset -> coordinates along each
        self._nodes, self._moves = [], []
        for d, disp in zip(directions, displacements):
            amps = np.asarray(d.amplitudes, np.float64)
            order = np.argsort(np.append(amps, 0.0))
            self._nodes.append(np.append(amps, 0.0)[order])
            self._moves.append(np.concatenate([disp, np.zeros((1, *neutral.shape))])[order])

    def coordinates(self, offset: np.ndarray) -> np.ndarray:
        """[B] the offset's coordinate along each direction (least squares)."""
        return np.asarray(offset, np.float32).reshape(-1) @ self._solve

    def predict(self, offset: np.ndarray, roll_deg: float = 0.0) -> np.ndarray:
        """The mesh the render of `offset`, turned `roll_deg`, shows."""
        points = self.neutral.copy()
        for a, nodes, moves in zip(self.coordinates(offset), self._nodes, self._moves):
            if len(nodes) < 2:  # a direction this avatar's encoder never moves along
                continue
            i = int(np.clip(np.searchsorted(nodes, a) - 1, 0, len(nodes) - 2))
            t = (a - nodes[i]) / (nodes[i + 1] - nodes[i])
            points += moves[i] + t * (moves[i + 1] - moves[i])
        if abs(roll_deg) >= MIN_ROLL_DEG:
            m = roll_matrix(self.size, roll_deg)
            points[:, :2] = points[:, :2] @ m[:, :2].T + m[:, 2]
        return points

    @classmethod
    def measure(cls, render: Callable[[np.ndarray], np.ndarray], track: Callable[[np.ndarray], np.ndarray | None],
                directions: list[Direction], k: int) -> AvatarMesh:
        """Render the avatar at rest and along each direction, track each render once. render: offset [1,K,512]
        -> [S,S,3] uint8; track: image -> [478,3] pixels or None (no face)."""
        start = time.perf_counter()
        image = render(np.zeros((1, k, 512), np.float32))
        neutral = track(image)
        if neutral is None:
            raise ValueError("no face found on the avatar's neutral render: the warp cannot run on this identity "
                             "(start without it: --no-warp)")
        displacements = []
        for d in directions:
            rows = []
            for a in d.amplitudes:
                points = track(render((a * d.vector).reshape(1, k, 512)))
                rows.append(np.zeros_like(neutral) if points is None else points - neutral)
                if points is None:
                    log.warning("no face on the avatar at %s %+.2f: the warp takes it as not moving there", d.name, a)
            displacements.append(np.stack(rows) if rows else np.zeros((0, *neutral.shape)))
        log.info("avatar mesh measured along %d directions (%d renders) in %.1f s", len(directions),
                 1 + sum(len(d.amplitudes) for d in directions), time.perf_counter() - start)
        return cls(neutral, directions, displacements, image.shape[0])

