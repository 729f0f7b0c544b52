"""Reenactment quality: does the avatar keep its identity and follow the driver?

    python benchmarks/quality.py                                  # shared clips (or the scripted demo)
    python benchmarks/quality.py --identities 0,1,2 --max-frames 300 --json q.json --plot q.png

For identity x driving clip (../shared/data/driving/*.mp4 when present, else the scripted sequence):
- identity distance, avatar frame <-> the identity's neutral render (dlib 128-d descriptor; < 0.6 is the
  same person by dlib's threshold): median and worst frame;
- pose RMSE (degrees; frames with |driver yaw| <= 25) and blendshape MAE (jawOpen, eyeBlinkLeft/Right,
  mouthSmileLeft/Right, browInnerUp) between the driver's relative signals and the avatar's (MediaPipe
  on both, no smoothing), each next to a motionless avatar's (always 0): real clips move little, so an
  absolute error alone proves nothing;
- per-signal correlation driver <-> avatar, and jitter of the avatar on the driver's stillest second;
- each blendshape's range bound: the error ratio of an avatar that showed the driver's change as far as MediaPipe's
  range [0, 1] allows from the avatar's own resting value (a face that smiles 0.74 at rest can show +0.26 of smile
  at most): no method that keeps the avatar's resting face can do better;
- each blendshape's reach bound: the error ratio of an avatar that showed exactly the driver's change, clipped
  to the range its expression reaches on this avatar within the identity budget (the fitted response curve's
  ends). What lies between the bound and the ratio is the encoder's to win; the bound itself is the
  generator's and the identity budget's (e.g. a face that smiles at rest cannot smile much more);
- and the error ratio of what the encoder asked: an avatar that showed exactly what the encoder meant it to show
  (the driver's change at the expression's scale, within reach, as much as the identity governor kept). Between the
  reach bound and it lies what the encoder chose not to show (governor, scales, the smoothed driver); between it and
  the ratio, what the avatar did not show of what it was asked (response curves, cross-talk, the tracker). A blink
  and a smile are asked as the mean of the two sides: what a driver does with one side only is not asked.
These are NOT the published CSIM/FID numbers: they are dlib and MediaPipe measurements of this tool's
own outputs, comparable across versions of live, not with papers.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from face_measures import BLENDS, POSE, pair_data, pair_summary, pooled_blends, pooled_landmarks, seam
from fps import machine_info
from quality_report import plot, print_table

from live.assets import AssetStore
from live.encoder.response import YIELD_POWER

log = logging.getLogger("benchmarks.quality")
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "driving"


def signals(face) -> np.ndarray | None:
    """[9]: yaw, pitch, roll, then the BLENDS, or None without a face."""
    if face is None:
        return None
    return np.array([face.yaw, face.pitch, face.roll] + [face.blendshape(b) for b in BLENDS], np.float32)


class RawFaces:
    """A probe stage: the driver's face tracked without smoothing (for measuring), kept by frame number; the frame
    goes on unchanged to the pipeline's own (smoothed) tracking."""

    name = "raw-tracking"

    def __init__(self, model):
        from live.stages.tracking import TrackingStage

        self.tracker = TrackingStage(model, smoothing=0)
        self.faces: dict[int, object] = {}

    def start(self) -> None:
        self.tracker.start()

    def process(self, frame):
        self.faces[frame.seq] = self.tracker.process(frame).face
        return frame

    def close(self) -> None:
        self.tracker.close()


class AvatarProbe:
    """A probe stage at the end of the pipeline: tracks each avatar frame (MediaPipe, no smoothing), records what
    the encoder asked, and every `stride`-th frame the dlib distance to the identity's reference descriptor."""

    name = "probe"

    def __init__(self, model, metric, reference, encoder, stride: int, keep: bool = False):
        # keep: keep (driver, latent-only render, output) images of every frame (for --strip)
        from live.stages.tracking import TrackingStage

        self.tracker = TrackingStage(model, smoothing=0)
        self.metric, self.reference, self.encoder, self.stride, self.keep = metric, reference, encoder, stride, keep
        self.images = []
        self.out, self.dist, self.asks, self.faces, self.seams = [], [], [], [], []

    def start(self) -> None:
        self.tracker.start()

    def process(self, frame):
        self.asks.append(asked(self.encoder, frame.signal_change))
        face = self.tracker.process(frame.replace(image=frame.output)).face
        self.faces.append(face)
        self.out.append(signals(face))
        self.seams.append(seam(frame.output, frame.render, face))
        if self.keep:
            self.images.append((frame.image, frame.output if frame.render is None else frame.render, frame.output))
        if (len(self.out) - 1) % self.stride == 0:
            d = self.metric.descriptor(frame.output, upsample=0)
            self.dist.append(self.metric.distance(d, self.reference) if d is not None and self.reference is not None
                             else np.nan)
        return frame

    def close(self) -> None:
        self.tracker.close()


def driver_frames(spec: str | None, max_frames: int, model) -> tuple[str, list, list]:
    """(name, frames with the smoothed face the encoder is driven by, the raw face of each for measuring)."""
    from live.demo import ScriptedSource
    from live.pipeline import Pipeline
    from live.stages.capture import open_capture
    from live.stages.tracking import TrackingStage

    if spec is None:
        src = ScriptedSource(fps=25)
        frames = []
        while (f := src.read()) is not None and len(frames) < max_frames:
            frames.append(f)
        return "scripted", frames, [f.face for f in frames]
    raw = RawFaces(model)
    frames = []
    Pipeline(open_capture(spec, max_frames=max_frames), [raw, TrackingStage(model)], lossless=True,
             on_frame=frames.append).run()
    frames = [f.replace(timings=()) for f in frames]
    return Path(spec).stem, frames, [raw.faces[f.seq] for f in frames]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", help="comma-separated videos (default: ../shared/data/driving/*.mp4, else scripted)")
    p.add_argument("--identities", default="0,1",
                   help="comma-separated seeds (generated faces) and/or identity files from `live enroll` "
                        "(their distance is measured to the enrolled source crop)")
    p.add_argument("--max-frames", type=int, default=150, help="frames per clip (default 150)")
    p.add_argument("--size", type=int, default=256, choices=[256, 512, 1024])
    p.add_argument("--head", choices=["auto", "learned", "linear"], default="auto",
                   help="the early exit's head, as `live run --head`: auto (default), learned or linear")
    p.add_argument("--id-stride", type=int, default=3, help="identity distance on every Nth frame (dlib is slow)")
    p.add_argument("--encoder", type=Path,
                   help="encoder weights, linear or calibrated (default: the committed calibrated encoder)")
    p.add_argument("--no-avatar-fit", action="store_true",
                   help="drive each avatar with the calibration faces' mean curves and costs instead of its own")
    p.add_argument("--frame-budget", type=float,
                   help="identity governor of a calibrated encoder: largest estimated identity distance of a frame "
                        "(default: the encoder's own; explore the identity/expression trade-off with it)")
    p.add_argument("--pose-share", type=float,
                   help="largest share of that budget the head pose may take, 0..1 (default: the encoder's own; "
                        "1 lets a strong nod or turn still every expression)")
    p.add_argument("--warp", action=argparse.BooleanOptionalAction,
                   help="with or without the geometric channel (default: as `live run`, live.config.WarpConfig)")
    p.add_argument("--warp-residual", choices=("predicted", "observed"),
                   help="how the warp knows the render's mesh: predicted from the offset or tracked on every render "
                        "(default: as `live run`)")
    p.add_argument("--warp-gains", metavar="M,E,B", help="the warp's mouth, eyes and brows shares (default 1,1,1)")
    p.add_argument("--no-warp-hold", action="store_true",
                   help="let the warp's spline move the nose, cheeks and chin front (default: held, live.mesh.HELD)")
    p.add_argument("--no-warp-gaze", action="store_true",
                   help="let the warp's spline carry the irises instead of sliding them under the lids (default: slid, "
                        "live.warp.slide_eye)")
    p.add_argument("--warp-undo", type=float, metavar="U",
                   help="the largest share of the latent's own motion the warp may take back (default: as `live run`)")
    p.add_argument("--rest", choices=("auto", "own", "neutral"), default="auto",
                   help="the avatar's resting face (live.rest): its own, a smile at rest taken back, or auto (as "
                        "`live run`: neutral with --warp); identity is measured against the identity's own rest "
                        "either way")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--plot", metavar="PNG", help="per-frame plot of the first identity x clip")
    p.add_argument("--strip", metavar="STEM",
                   help="write STEM.png (6 frames) and STEM.mp4 of the first identity x clip: driver | latent only "
                        "| with the warp")
    args = p.parse_args(argv)
    if args.pose_share is not None and not 0 < args.pose_share <= 1:
        p.error(f"--pose-share must be in (0, 1], got {args.pose_share}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    from live.avatar import load_avatar
    from live.config import Config
    from live.encoder import load_encoder
    from live.metrics.face_distance import IdentityMetric
    from live.models.generator import load_mobilestylegan
    from live.pipeline import Pipeline
    from live.stages import build_stages, avatar_render
    from live.stages.capture import FrameList

    store = AssetStore(progress=sys.stderr.isatty())
    gen = load_mobilestylegan(store)
    enc = load_encoder(args.encoder, generator_sha256=gen.source_sha256)
    governor = getattr(getattr(enc, "response", None), "governor", None)  # None: the linear encoder, or no budget
    if governor is not None and (args.frame_budget, args.pose_share) != (None, None):
        enc = enc.with_governor(args.frame_budget, args.pose_share)
        governor = enc.response.governor
    metric = IdentityMetric(store)
    model = store.resolve("face_landmarker")
    clips = args.clips.split(",") if args.clips else [str(c) for c in sorted(SHARED.glob("*.mp4"))] or [None]
    pairs, pooled = [], {"driver": [], "avatar": [], "driver_yaw": [], "bound": [], "asked": [], "range": []}
    plot_data, whole, all_seams = None, [], []
    for clip in clips:
        name, frames, drv_faces = driver_frames(clip, args.max_frames, model)
        drv = [signals(face) for face in drv_faces]
        drv_size = (frames[0].image.shape[1], frames[0].image.shape[0]) if frames else (1, 1)
        for seed in args.identities.split(","):
            cfg = Config()
            cfg.synthesis.size, cfg.synthesis.backend, cfg.synthesis.head = args.size, "torch", args.head
            cfg.encoder.rest = args.rest
            if args.warp is not None:
                cfg.warp.enabled = args.warp
            if args.warp_residual:
                cfg.warp.residual = args.warp_residual
            if args.warp_gains:
                cfg.warp.mouth, cfg.warp.eyes, cfg.warp.brows = (float(x) for x in args.warp_gains.split(","))
            if args.warp_undo is not None:
                cfg.warp.undo = args.warp_undo
            cfg.warp.hold, cfg.warp.gaze = not args.no_warp_hold, not args.no_warp_gaze
            if seed.strip().isdigit():
                cfg.synthesis.seed = int(seed)
            else:
                cfg.synthesis.identity_file = Path(seed.strip())
            avatar = load_avatar(cfg, store, fit=not args.no_avatar_fit, encoder=enc)
            own_rest = None if avatar.rest_offset is None else -avatar.rest_offset  # the identity's own rest
            neutral_img = avatar_render(cfg, avatar)(own_rest)
            neutral_desc = metric.descriptor(neutral_img if avatar.crop is None else avatar.crop)
            probe = AvatarProbe(model, metric, neutral_desc, avatar.encoder, args.id_stride,
                                keep=bool(args.strip) and plot_data is None)
            stages = build_stages(("encoder", "synthesis", "warp"), cfg, store, avatar)
            Pipeline(FrameList(frames), [*stages, probe], lossless=True).run()
            out, dist, asks = probe.out, probe.dist, probe.asks
            ends = reach(avatar.encoder)
            pairs.append(score(name, seed, drv, out, dist, ends, asks))
            whole.append(pair_data(drv_faces, probe.faces, drv_size, args.size))
            seams = [x for x in probe.seams if x is not None]
            pairs[-1]["whole_face"] = {**pair_summary(whole[-1]),
                                       "seam": round(float(np.mean(seams)), 3) if seams else None}
            all_seams += seams
            log.info("%s x identity %s: %s", name, seed, json.dumps(pairs[-1]["summary"]))
            ok = [i for i in range(len(drv)) if drv[i] is not None and out[i] is not None]
            if ok:
                d0 = next(x for x in drv if x is not None)
                o0 = next(x for x in out if x is not None)
                pooled["driver"] += [drv[i] - d0 for i in ok]
                pooled["avatar"] += [out[i] - o0 for i in ok]
                pooled["driver_yaw"] += [drv[i][0] for i in ok]  # absolute yaw: the +-25 deg window
                pooled["bound"] += [clipped(drv[i] - d0, ends) for i in ok]
                pooled["asked"] += [asks[i] for i in ok]
                pooled["range"] += [ranged(drv[i] - d0, o0) for i in ok]
            if plot_data is None:
                plot_data = (name, seed, drv, out, dist, args.id_stride)
                if args.strip:
                    for path in strip(args.strip, probe.images, args.size):
                        print(f"wrote {path}")
    result = {"pairs": pairs, "overall": overall(pairs, pooled), "machine": machine_info(),
              "whole_face": {"blendshapes": pooled_blends(whole), "landmarks": pooled_landmarks(whole),
                             "seam": round(float(np.mean(all_seams)), 3) if all_seams else None},
              "note": "not the published CSIM/FID numbers: dlib descriptor distances and MediaPipe signals on "
                      "live's own outputs", "encoder": enc.meta.get("kind"), "size": args.size, "head": args.head,
                      "frame_budget": governor.frame_budget if governor else None,
                      "pose_share": governor.pose_share if governor else None,
                      "expression_scale": enc.response.meta()["expression_scale"] if governor else None,
                      "yield_power": YIELD_POWER}
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot and plot_data:
        plot(args.plot, *plot_data)
        print(f"wrote {args.plot}")
    return 0


def strip(stem: str, images: list, size: int) -> list[str]:
    """STEM.png (six frames spread over the clip, one per row) and STEM.mp4 (every frame) of [driver | latent
    only | with the warp] rows, each panel size x size (the driver centre-cropped to a square)."""
    import cv2

    from live.video_file import VideoWriter

    def square(img):
        h, w = img.shape[:2]
        s = min(h, w)
        return cv2.resize(img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s], (size, size),
                          interpolation=cv2.INTER_AREA)

    rows = [np.hstack([square(d), r, o]) for d, r, o in images]
    if not rows:
        return []
    picks = np.linspace(0, len(rows) - 1, 6).round().astype(int)
    cv2.imwrite(stem + ".png", cv2.cvtColor(np.vstack([rows[i] for i in picks]), cv2.COLOR_RGB2BGR))
    video = VideoWriter(Path(stem + ".mp4"), 25.0, (3 * size, size))
    for row in rows:
        video.write(row)
    video.close()
    return [stem + ".png", stem + ".mp4"]


def reads(response) -> list[tuple[int, int]]:
    """(expression j, index i in BLENDS) for each blendshape an expression's readout reads (a blink or a smile reads
    both sides)."""
    from live.models.encoder import SIGNAL_INDEX

    return [(j, i) for j, readout in enumerate(response.readout) for i, b in enumerate(BLENDS)
            if readout[SIGNAL_INDEX[b]] != 0]


def reach(enc) -> dict[str, tuple[float, float]]:
    """{blendshape: (lowest, highest) change its expression shows on this avatar}: the ends of the (fitted)
    response curve at the expression's scale, for each blendshape the expression's readout reads; {} for an
    encoder without curves. A blink's or smile's reach is that of the mean of left and right (its readout)."""
    r = getattr(enc, "response", None)
    if r is None:
        return {}
    return {BLENDS[i]: (float(r.curve_x[j].min()) * float(r.scales[j]), float(r.curve_x[j].max()) * float(r.scales[j]))
            for j, i in reads(r)}


def asked(enc, delta: np.ndarray | None) -> np.ndarray:
    """[len(BLENDS)]: the change of each blendshape the encoder means the avatar to show for a signal change
    [55] (its expression's `shown`, on each blendshape its readout reads; NaN for the others, for an encoder
    without curves and without a face)."""
    out = np.full(len(BLENDS), np.nan, np.float32)
    if delta is None or not hasattr(enc, "response"):
        return out
    shown = enc.shown(delta)
    for j, i in reads(enc.response):
        out[i] = shown[j]
    return out


def ranged(rel: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """[..., len(BLENDS)]: the driver's relative blendshapes [..., 9] clipped to what MediaPipe's range [0, 1] leaves
    from the avatar's resting signals [9]."""
    return np.clip(rel[..., 3:], -rest[3:], 1.0 - rest[3:]).astype(np.float32)


def clipped(rel: np.ndarray, ends: dict[str, tuple[float, float]]) -> np.ndarray:
    """[len(BLENDS)]: the driver's relative blendshapes [9] clipped to the avatar's reach (NaN where unknown)."""
    return np.array([np.clip(rel[3 + i], *ends[b]) if b in ends else np.nan for i, b in enumerate(BLENDS)],
                    np.float32)


def score(name, seed, drv, out, dist, ends: dict | None = None, asks: list | None = None) -> dict:
    ok = [i for i in range(len(drv)) if drv[i] is not None and out[i] is not None]
    a = np.array([asks[i] for i in ok]) if asks and ok else np.full((len(ok), len(BLENDS)), np.nan)
    d = np.array([drv[i] for i in ok]) if ok else np.zeros((0, 9))
    o = np.array([out[i] for i in ok]) if ok else np.zeros((0, 9))
    d_rel, o_rel = (d - d[:1], o - o[:1]) if ok else (d, o)
    ranges = ranged(d_rel, o[0]) if ok else None  # o[0]: the avatar's resting signals
    within = np.abs(d[:, 0]) <= 25 if ok else np.zeros(0, bool)
    res = {"clip": name, "seed": seed, "frames": len(drv), "measured": len(ok),
           "avatar_face_found": float(np.mean([x is not None for x in out]))}
    dist = np.array(dist, np.float64)
    res["identity"] = {"median": round(float(np.nanmedian(dist)), 3), "max": round(float(np.nanmax(dist)), 3),
                       "no_face": int(np.isnan(dist).sum())} if np.isfinite(dist).any() else None
    err = {}
    for j, n in enumerate(POSE + BLENDS):
        dd, oo = (d_rel[within, j], o_rel[within, j]) if j < 3 else (d_rel[:, j], o_rel[:, j])
        if j < 3:
            e, base = np.sqrt(np.mean((dd - oo) ** 2)), np.sqrt(np.mean(dd ** 2))
        else:
            e, base = np.mean(np.abs(dd - oo)), np.mean(np.abs(dd))
        corr = float(np.corrcoef(dd, oo)[0, 1]) if dd.std() > 1e-6 and oo.std() > 1e-6 else float("nan")
        err[n] = {"error": round(float(e), 4), "motionless": round(float(base), 4),
                  "ratio": round(float(e / base), 3) if base > 0 else None, "corr": round(corr, 3)}
        if j >= 3 and n in (ends or {}) and base > 0:
            err[n]["reach_bound"] = round(float(np.mean(np.abs(dd - np.clip(dd, *ends[n]))) / base), 3)
        if j >= 3 and base > 0:
            err[n]["range_bound"] = round(float(np.mean(np.abs(dd - ranges[:, j - 3])) / base), 3)
        if j >= 3 and base > 0 and not np.isnan(a[:, j - 3]).any():
            err[n]["asked"] = round(float(np.mean(np.abs(dd - a[:, j - 3])) / base), 3)
    res["signals"] = err
    still = stillest(d) if len(d) > 30 else None
    res["jitter_deg"] = round(float(np.mean(np.abs(np.diff(o[still, :3], axis=0)))), 3) if still is not None else None
    res["summary"] = {"id_median": res["identity"]["median"] if res["identity"] else None,
                      "yaw_corr": err["yaw"]["corr"], "jaw_corr": err["jawOpen"]["corr"]}
    return res


def stillest(d: np.ndarray, window: int = 25) -> slice:
    """The window of frames where the driver's head moves least."""
    move = np.abs(np.diff(d[:, :3], axis=0)).sum(axis=1)
    sums = np.convolve(move, np.ones(window), mode="valid")
    start = int(np.argmin(sums))
    return slice(start, start + window)


def overall(pairs: list[dict], pooled: dict) -> dict:
    ids = [p["identity"] for p in pairs if p["identity"]]
    res = {"identity_median": round(float(np.median([i["median"] for i in ids])), 3) if ids else None,
           "identity_worst_frame": round(float(max(i["max"] for i in ids)), 3) if ids else None}
    d, o, bounds, asks, ranges = (np.array(pooled[k]) for k in ("driver", "avatar", "bound", "asked", "range"))
    within = np.abs(np.array(pooled["driver_yaw"])) <= 25 if len(d) else np.zeros(0, bool)
    for j, n in enumerate(POSE + BLENDS):
        ratios = [p["signals"][n]["ratio"] for p in pairs if p["signals"][n]["ratio"] is not None]
        dd, oo = (d[within, j], o[within, j]) if j < 3 and len(d) else (d[:, j], o[:, j]) if len(d) else ([], [])
        if len(dd) == 0:
            pooled_ratio = None
        elif j < 3:  # RMSE for pose, MAE for blendshapes, over every measured frame of every pair
            pooled_ratio = float(np.sqrt(np.mean((dd - oo) ** 2)) / max(np.sqrt(np.mean(dd ** 2)), 1e-9))
        else:
            pooled_ratio = float(np.mean(np.abs(dd - oo)) / max(np.mean(np.abs(dd)), 1e-9))
        corr = float(np.corrcoef(d[:, j], o[:, j])[0, 1]) if len(d) > 2 and d[:, j].std() > 0 and o[:, j].std() > 0 \
            else float("nan")
        gain = float(np.cov(d[:, j], o[:, j])[0, 1] / d[:, j].var()) if len(d) > 2 and d[:, j].var() > 0 \
            else float("nan")  # avatar change per unit of driver change (1 = same amplitude)
        res[n] = {"ratio_mean": round(float(np.mean(ratios)), 3) if ratios else None,
                  "ratio_pooled": round(pooled_ratio, 3) if pooled_ratio is not None else None,
                  "corr_pooled": round(corr, 3), "gain_pooled": round(gain, 3)}
        if j >= 3:
            res[n]["range_bound_pooled"] = bound_ratio(d[:, j], ranges[:, j - 3]) if len(d) else None
            res[n]["reach_bound_pooled"] = bound_ratio(d[:, j], bounds[:, j - 3]) if len(d) else None
            res[n]["asked_pooled"] = bound_ratio(d[:, j], asks[:, j - 3]) if len(d) else None
    jit = [p["jitter_deg"] for p in pairs if p["jitter_deg"] is not None]
    res["jitter_deg_mean"] = round(float(np.mean(jit)), 3) if jit else None
    return res


def bound_ratio(d: np.ndarray, bound: np.ndarray) -> float | None:
    """MAE ratio of `bound` (the clipped driver, or what was asked) against the driver over all frames; None where
    any of it is unknown."""
    if len(d) == 0 or np.isnan(bound).any() or np.mean(np.abs(d)) == 0:
        return None
    return round(float(np.mean(np.abs(d - bound)) / np.mean(np.abs(d))), 3)


if __name__ == "__main__":
    raise SystemExit(main())
