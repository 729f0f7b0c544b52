"""Whole-face measures for benchmarks/quality.py: every blendshape, the mouth and eye landmarks, the seam.

- Blendshapes: each of MediaPipe's 51 (not `_neutral`), the driver's change from its first frame against the
  avatar's, as quality.py does for its six. A blendshape *moves* on a clip when its motionless error (mean
  |driver change|) there is above MOVING (0.02: MediaPipe's frame-to-frame noise on a still face is ~0.005-0.01);
  the pooled ratio sums |driver - avatar| over every (clip, blendshape) that moves and divides by the sum of
  |driver|; the correlation is the mean over blendshapes of each one's correlation over the frames where it moves.
  Groups: mouth (jaw*, mouth*), eyes (eye*), brows (brow*), cheeks/nose (cheek*, noseSneer*).
- Landmarks (like the seeds' AKD, relative): each frame's mesh aligned onto the first frame's by a similarity on
  points an expression hardly moves (live.mesh.STABLE: head pose and distance removed), the mouth and eye points'
  motion from the first frame divided by the inter-ocular distance, driver against avatar; error = mean distance
  between the two motions, over the mean length of the driver's (a motionless avatar's error): a ratio.
- Seam: mean |warped output - un-warped render| (0-255) outside the face oval dilated by 5% of the image, where a
  warp should change nothing (None when the pipeline did not warp).
"""

from __future__ import annotations

import cv2
import numpy as np

from live import mesh, transfer
from live.frames import BLENDSHAPE_NAMES

MOVING = 0.02
POSE = ("yaw", "pitch", "roll")
BLENDS = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")  # quality.py's
NAMES = BLENDSHAPE_NAMES[1:]
GROUPS = {
    "mouth": tuple(n for n in NAMES if n.startswith(("jaw", "mouth"))),
    "eyes": tuple(n for n in NAMES if n.startswith("eye")),
    "brows": tuple(n for n in NAMES if n.startswith("brow")),
    "cheeks/nose": tuple(n for n in NAMES if n.startswith(("cheek", "nose"))),
}
LANDMARK_GROUPS = {"mouth": mesh.MOUTH, "eyes": mesh.EYES}


def blend_changes(faces: list, ok: list[int]) -> np.ndarray:
    """[len(ok),51]: each measured frame's blendshapes minus the first measured frame's."""
    b = np.array([faces[i].blendshapes[1:] for i in ok], np.float64)
    return b - b[:1]


def landmark_motion(faces: list, ok: list[int], size: tuple[int, int]) -> np.ndarray:
    """[len(ok),478,2]: each frame's mesh, head pose removed, minus the first frame's, over the inter-ocular
    distance; size: (width, height) of the images the faces were found in."""
    pts = [mesh.to_pixels(faces[i].landmarks, *size) for i in ok]
    ref = pts[0]
    iod = mesh.interocular(ref)
    return np.array([transfer.motion(p, ref) / iod for p in pts])


def pair_data(drv: list, out: list, drv_size: tuple[int, int], out_size: int) -> dict:
    """What one identity x clip contributes to the pooled measures: the frames where both faces were found."""
    ok = [i for i in range(len(drv)) if drv[i] is not None and out[i] is not None]
    if len(ok) < 2:
        return {"frames": len(ok)}
    return {"frames": len(ok), "d_blend": blend_changes(drv, ok), "o_blend": blend_changes(out, ok),
            "d_lm": landmark_motion(drv, ok, drv_size), "o_lm": landmark_motion(out, ok, (out_size, out_size))}


def pair_summary(data: dict) -> dict:
    """One pair's blendshape and landmark ratios (None without two measured frames)."""
    if "d_blend" not in data:
        return {"blend_ratio": None, "landmark_ratio": None}
    blends = pooled_blends([data])
    return {"blend_ratio": blends["all"]["ratio"], "blend_corr": blends["all"]["corr"],
            "landmark_ratio": pooled_landmarks([data])["all"]}


def pooled_blends(pairs: list[dict]) -> dict:
    """{"per_blendshape": {name: ratio, corr, moving clips}, group or "all": {ratio, corr, blendshapes}}."""
    pairs = [p for p in pairs if "d_blend" in p]
    per = {}
    for j, name in enumerate(NAMES):
        moving = [p for p in pairs if np.mean(np.abs(p["d_blend"][:, j])) > MOVING]
        if not moving:
            continue
        d = np.concatenate([p["d_blend"][:, j] for p in moving])
        o = np.concatenate([p["o_blend"][:, j] for p in moving])
        corr = float(np.corrcoef(d, o)[0, 1]) if d.std() > 1e-9 and o.std() > 1e-9 else 0.0
        per[name] = {"error": float(np.abs(d - o).sum()), "motionless": float(np.abs(d).sum()), "corr": corr,
                     "ratio": round(float(np.abs(d - o).sum() / np.abs(d).sum()), 3), "pairs": len(moving)}
    res = {"per_blendshape": {n: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                                  if k not in ("error", "motionless")} for n, r in per.items()},
           "moving_threshold": MOVING}
    for group, names in (("all", NAMES), *GROUPS.items()):
        rows = [per[n] for n in names if n in per]
        res[group] = {"ratio": round(sum(r["error"] for r in rows) / sum(r["motionless"] for r in rows), 3)
                      if rows else None,
                      "corr": round(float(np.mean([r["corr"] for r in rows])), 3) if rows else None,
                      "blendshapes": len(rows)}
    return res


def pooled_landmarks(pairs: list[dict]) -> dict:
    """{"all", "mouth", "eyes": error / motionless error of the pose-free landmark motion}."""
    pairs = [p for p in pairs if "d_lm" in p]
    res = {}
    for group, idx in (("all", mesh.MOUTH + mesh.EYES), *LANDMARK_GROUPS.items()):
        if not pairs:
            res[group] = None
            continue
        idx = list(idx)
        err = sum(np.linalg.norm(p["d_lm"][:, idx] - p["o_lm"][:, idx], axis=-1).sum() for p in pairs)
        base = sum(np.linalg.norm(p["d_lm"][:, idx], axis=-1).sum() for p in pairs)
        res[group] = round(float(err / base), 3) if base > 0 else None
    return res


def oval_outside(face, size: int, margin: float = 0.05) -> np.ndarray:
    """[S,S] bool: outside the face oval (dilated by `margin` of the image) of a face found in a size² image."""
    pts = mesh.to_pixels(face.landmarks, size, size)[list(mesh.FACE_OVAL), :2]
    inside = np.zeros((size, size), np.uint8)
    cv2.fillPoly(inside, [np.round(pts).astype(np.int32)], 1)
    k = max(1, round(margin * size))
    inside = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    return inside == 0


def seam(output: np.ndarray, render: np.ndarray | None, face) -> float | None:
    """Mean |output - render| (0-255) outside the render's face oval; None without a warp or a face."""
    if render is None or face is None:
        return None
    outside = oval_outside(face, render.shape[0])
    if not outside.any():
        return 0.0
    return float(np.abs(output.astype(np.int16) - render.astype(np.int16))[outside].mean())
