"""The avatar's resting face: an identity that smiles at rest, taken back towards a neutral mouth by the latent.

A generated face (or an enrolled portrait) that smiles at rest shows that smile on a driver who does not, and its jaw
opening then reads as laughter (issue 28, item 6). `neutral_rest` measures the avatar at rest (MediaPipe's smile,
the mean of left and right) and, where it smiles more than SMILE_AT_REST, walks the encoder's own smile direction
back in REST_STEP steps until MediaPipe reads at most SMILE_TARGET, stopping before the step whose identity
distance (dlib, to the avatar's own rest) would pass REST_BUDGET. The chosen offset is folded into the identity's
first K style layers (live.avatar), so everything after it (the avatar fit, synthesis, the warp's mesh, the frame)
sees the neutral rest as the avatar's own. ~1-9 renders at 256², cached per identity and encoder (`RestCache`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from live.atomic import save_text_atomic
from live.avatar_fit import ReadOffset
from live.models.encoder import SIGNAL_INDEX

log = logging.getLogger(__name__)

SMILE_AT_REST = 0.3  # MediaPipe smile reading above which an avatar counts as smiling at rest
SMILE_TARGET = 0.15  # ... and what the neutral rest takes it to (a talking person's mouth at rest reads 0-0.2)
REST_STEP = 0.25  # smile coefficients are walked back in these steps...
MAX_STEPS = 8  # ...at most this many (coefficient -2: further the face changes more than its smile)
REST_BUDGET = 0.25  # largest dlib distance from the avatar's own rest the neutral rest may cost (0.6: another person)
REST_VERSION = 1  # part of the cache key: bump when neutral_rest measures differently
SMILE = ("mouthSmileLeft", "mouthSmileRight")


@dataclass(frozen=True)
class Rest:
    """What the neutral rest did to one avatar."""

    coefficient: float  # along the encoder's smile direction (0: the avatar's own rest kept)
    smile_before: float  # MediaPipe's smile at the avatar's own rest
    smile_after: float  # ... at the neutral rest
    identity_cost: float  # dlib distance of the neutral rest from the avatar's own rest
    renders: int  # renders it took

    def offset(self, direction: np.ndarray) -> np.ndarray:
        """[1,K,512] float32 the rest's offset along `direction` ([K,512], the encoder's smile direction)."""
        return (self.coefficient * np.asarray(direction, np.float32))[None]


def smile(signals: np.ndarray) -> float:
    return float(np.mean([signals[SIGNAL_INDEX[name]] for name in SMILE]))


def neutral_rest(read: ReadOffset, direction: np.ndarray) -> Rest | None:
    """The neutral rest of the avatar `read` renders, along the smile `direction` ([K,512]); None when MediaPipe or
    dlib do not find the avatar's face at rest."""
    zero = np.zeros((1, *direction.shape), np.float32)
    reference, signals = read(zero, True)
    if reference is None or signals is None:
        return None
    before = smile(signals)
    best = Rest(0.0, round(before, 3), round(before, 3), 0.0, 1)
    if before <= SMILE_AT_REST:
        return best
    for step in range(1, MAX_STEPS + 1):
        c = -REST_STEP * step
        descriptor, signals = read(zero + c * direction[None], True)
        if descriptor is None or signals is None:
            break
        cost = float(np.linalg.norm(descriptor - reference))
        if cost > REST_BUDGET:
            best = replace(best, renders=step + 1)
            break
        best = Rest(c, round(before, 3), round(smile(signals), 3), round(cost, 3), step + 1)
        if best.smile_after <= SMILE_TARGET:
            break
    return best


class RestCache:
    """Neutral rests measured once per (identity key, smile direction), kept as small JSON files."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = Path(cache_dir)

    def path(self, identity_key: str, direction: np.ndarray) -> Path:
        h = hashlib.sha256(f"rest-v{REST_VERSION}:{identity_key}:".encode())
        h.update(np.ascontiguousarray(direction, np.float32).tobytes())
        return self.cache_dir / f"rest-{h.hexdigest()[:24]}.json"

    def get(self, identity_key: str, direction: np.ndarray, make_reader) -> Rest | None:
        """The cached rest, else a new one (then cached); make_reader builds the avatar's ReadOffset (only when
        measuring; closed after it when it has a close())."""
        path = self.path(identity_key, direction)
        try:
            return Rest(**json.loads(path.read_text()))
        except FileNotFoundError:
            pass
        except (ValueError, TypeError, OSError) as exc:
            log.warning("ignoring a damaged neutral-rest record %s (%s): measuring again", path, exc)
        read = make_reader()
        try:
            rest = neutral_rest(read, direction)
        finally:
            close = getattr(read, "close", None)
            if close is not None:
                close()
        if rest is not None:
            save_text_atomic(path, json.dumps(asdict(rest)))
        return rest
