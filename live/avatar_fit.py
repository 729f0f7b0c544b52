"""The identity governor fitted to one avatar.

The calibrated encoder (`python -m live.train.calibrate_encoder`) scales a frame's expressions down when
their estimated identity cost, together with the head pose's, would take the avatar too far from itself.
Those costs are means over 16 calibration faces, and faces differ: on the benchmark's two identities the
worst frame reached dlib distance 0.605 under the mean costs, 0.509 under their own (same budget).
`fit_to_avatar` measures the costs on the avatar itself: its expression directions at the calibration's
coefficients and the head angles at +-16 degrees, rendered at 256² and described by dlib (~60 renders,
~10 s on 2 cores). `AvatarFits` caches the result per (encoder, identity), so it happens once.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

import numpy as np

from live.models.encoder import POSE_SCALE, SIGNAL_INDEX, CalibratedEncoder, LinearEncoder, pad_points

log = logging.getLogger(__name__)

POSE_PROBE = 16.0  # degrees of yaw and pitch the pose cost is measured at (both signs)
FIT_VERSION = 1  # part of the cache key: bump when fit_to_avatar measures differently

# offset [1,K,512] float32 -> dlib descriptor [128] of the rendered avatar, or None when dlib finds no face
Describe = Callable[[np.ndarray], np.ndarray | None]


def cost_points(coefficients: list[float], distances: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients, identity distance) through (0, 0), never falling away from 0 (for the governor);
    NaN distances (no face found) are left out."""
    pts = sorted([(0.0, 0.0)] + [(c, d) for c, d in zip(coefficients, distances, strict=True)
                                 if np.isfinite(d) and c != 0])
    c = np.array([x for x, _ in pts], np.float32)
    d = np.array([y for _, y in pts], np.float32)
    zero = int(np.flatnonzero(c == 0)[0])
    d[zero:] = np.maximum.accumulate(d[zero:])
    d[:zero + 1] = np.maximum.accumulate(d[:zero + 1][::-1])[::-1]
    return c, d


def fit_to_avatar(enc: CalibratedEncoder, describe: Describe,
                  progress: Callable[[int, int], None] | None = None) -> CalibratedEncoder | None:
    """`enc` with the identity costs of its expressions and head angles measured on this avatar (directions,
    curves and budget unchanged); None if dlib cannot find the avatar's neutral face."""
    if enc.frame_budget is None or enc.cost_c is None:
        raise ValueError("this encoder has no identity governor to fit (calibrate it with --frame-budget > 0)")
    k = enc.k
    grid = [[float(c) for c in row if c != 0] for row in enc.cost_c]
    total, done = 1 + sum(len(g) for g in grid) + 4, 0

    def step(offset: np.ndarray) -> np.ndarray | None:
        nonlocal done
        desc = describe(offset.reshape(1, k, 512).astype(np.float32))
        done += 1
        if progress:
            progress(done, total)
        return desc

    neutral = step(np.zeros((k, 512)))
    if neutral is None:
        return None

    def distance(offset: np.ndarray) -> float:
        desc = step(offset)
        return float("nan") if desc is None else float(np.linalg.norm(desc - neutral))

    tables = [cost_points(g, [distance(c * d) for c in g]) for g, d in zip(grid, enc.directions, strict=True)]
    pose_cost = []
    for j, name in enumerate(("yaw", "pitch")):
        row = enc.matrix[SIGNAL_INDEX[name]]
        dist = [distance(row * (sign * POSE_PROBE / POSE_SCALE)) for sign in (1, -1)]
        dist = [d for d in dist if np.isfinite(d)]
        pose_cost.append(max(dist) / POSE_PROBE if dist else float(enc.pose_cost[j]))
    cost_c, cost_id = pad_points([c for c, _ in tables], [d for _, d in tables])
    meta = {**enc.meta, "fitted_to_avatar": {
        "version": FIT_VERSION, "pose_cost_per_deg": [round(p, 4) for p in pose_cost],
        "expression_cost_at_ends": {n: [round(float(d[0]), 3), round(float(d[-1]), 3)]
                                    for n, (_, d) in zip(enc.names, tables, strict=True)}}}
    return CalibratedEncoder(enc.matrix, k, enc.directions, enc.readout, enc.curve_x, enc.curve_y, enc.names, meta,
                             cost_c, cost_id, np.array(pose_cost, np.float32), enc.frame_budget)


def net_describe(net, metric) -> Describe:
    """A Describe through a SynthesisNet (offset -> image) and an IdentityMetric."""
    import torch

    from live.synthesis import to_uint8

    def describe(offset: np.ndarray) -> np.ndarray | None:
        with torch.no_grad():
            rgb = to_uint8(net(torch.from_numpy(offset)).numpy())
        return metric.descriptor(rgb, upsample=0)

    return describe


class AvatarFits:
    """Encoders fitted to avatars, cached on disk by (encoder tensors, identity key, FIT_VERSION)."""

    def __init__(self, cache_dir: Path):
        # cache_dir: where fitted encoders are kept (a small safetensors + json each).
        self.cache_dir = Path(cache_dir)

    def path(self, enc: CalibratedEncoder, identity_key: str) -> Path:
        h = hashlib.sha256(f"v{FIT_VERSION}:{identity_key}:".encode())
        for name, t in sorted(enc.tensors().items()):
            h.update(name.encode() + np.ascontiguousarray(t).tobytes())
        return self.cache_dir / f"avatar-{h.hexdigest()[:24]}.safetensors"

    def get(self, enc: LinearEncoder, identity_key: str, make_describe: Callable[[], Describe],
            progress: Callable[[int, int], None] | None = None) -> LinearEncoder:
        """The cached fit, else a new one (then cached); `enc` itself when it has no governor to fit or the
        avatar's neutral face is not found by dlib. make_describe: builds the Describe (only when fitting)."""
        if not isinstance(enc, CalibratedEncoder) or enc.frame_budget is None:
            return enc
        path = self.path(enc, identity_key)
        if path.is_file():
            try:
                return CalibratedEncoder.load(path)
            except (ValueError, OSError) as exc:
                log.warning("ignoring a damaged avatar fit %s (%s): fitting again", path, exc)
        fitted = fit_to_avatar(enc, make_describe(), progress)
        if fitted is None:
            log.warning("dlib does not find the avatar's neutral face: its identity governor uses the mean costs "
                        "of the calibration faces")
            return enc
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fitted.save(path, fitted.meta)  # weights written then renamed
        return fitted


def fit_encoder(enc: LinearEncoder, store, generator, identity, tuned_head=None, progress: bool = True) \
        -> LinearEncoder:
    """`enc` fitted to the avatar of `identity` (W+ styles [1,L,512], optional tuned 256² head), cached under
    the asset cache; a tqdm bar on stderr while it measures (the first time only)."""
    from live.synthesis import identity_key

    def make_describe() -> Describe:
        from live.metrics.identity import IdentityMetric
        from live.synthesis import SynthesisNet

        log.info("fitting the identity governor to this avatar (once, ~10 s; cached)")
        return net_describe(SynthesisNet(generator, identity, enc.k, 256, tuned_head=tuned_head), IdentityMetric(store))

    bar = None

    def tick(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="fitting to the avatar", unit="render", disable=not progress, leave=False)
        bar.update(done - bar.n)

    try:
        return AvatarFits(Path(store.cache_dir) / "avatars").get(enc, identity_key(identity, tuned_head), make_describe,
                                                                  tick)
    except RuntimeError as exc:  # the dlib models cannot be had (offline, no dlib): drive it with the mean costs
        log.warning("cannot fit the identity governor to this avatar (%s): using the calibration faces' mean "
                    "costs; --no-avatar-fit silences this", exc)
        return enc
    finally:
        if bar is not None:
            bar.close()
