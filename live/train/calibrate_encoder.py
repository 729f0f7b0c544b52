"""Calibrate the deformation encoder: distilled expression directions and measured response curves.

    python -m live.train.fit_encoder --data DATA       # first: the linear baseline (Bounareli et al.)
    python -m live.train.calibrate_encoder             # then: ~15 min on 2 cores; writes
                                                       # live/models/encoder_calibrated.{safetensors,json}

The linear map moves the tracked signals well on the small changes it was fitted on, but real drivers ask for far
more (jawOpen up to 0.7-0.9, smiles +-0.7, blinks 0.6): through it the avatar showed a third to a half of that,
with cross-talk. This step, on generated identities the linear fit never saw:

1. one direction per expression (jaw, smile, blink, brows) from the linear map's columns (left + right
   together: the driver's mean of the two is what is asked), or, for the blink, one StyleSpace channel
   (STYLE_CHANNELS, live.train.style_channels: it closes the eyes for a third of the identity change);
2. distillation (`--refine-steps`, identity regularisation): each direction is optimised, through the
   generator, to keep what it does inside its own region (lower face, eyes, brows: MediaPipe landmarks)
   and to change nothing outside it (hair, background, the rest of the face);
   then, for the names in `--identity-refine` (jaw, smile), optimised through a MediaPipe surrogate and
   dlib's descriptor in torch for more reach per unit of identity change (live.train.identity_refine);
3. response curves: each direction is rendered at a grid of coefficients on `--identities` faces,
   tracked, and the mean change of its signal gives the map asked change -> coefficient (monotone;
   capped where the mean dlib identity distance to the neutral face passes `--identity-budget`);
4. head pose: the linear yaw and pitch columns, scaled by their measured gains;
5. an identity governor (`--frame-budget`): from the measured identity cost of each expression and of
   the head angles, the encoder scales a frame's expressions down when together they would cost more;
   the head may take at most `--pose-share` of that budget (a strong nod is shown smaller, not every expression
   stilled); written as an AvatarResponse (live.encoder), the record the runtime reads.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import torch

from live.encoder import Encoder
from live.encoder.response import AvatarResponse, Governor
from live.models.curves import DEAD_ZONE, MIN_REACH, MIN_STEP, cost_points, pad_points, response_curve
from live.models.encoder import CALIBRATED_PATH, NUM_SIGNALS, POSE_SCALE, SIGNAL_INDEX, WEIGHTS_PATH, LinearEncoder
from live.train.data import CALIBRATION_BASE, POOL_BASE
from live.train.generated_faces import GeneratedFaces

log = logging.getLogger("live.train.calibrate_encoder")

# name: (signal weights that make the asked change, region, amplitude of the linear columns distilled)
EXPRESSIONS = {
    "jaw": ({"jawOpen": 1.0}, "mouth", 1.0),
    "smile": ({"mouthSmileLeft": 0.5, "mouthSmileRight": 0.5}, "mouth", 1.0),
    "blink": ({"eyeBlinkLeft": 0.5, "eyeBlinkRight": 0.5}, "eyes", 0.6),
    "brows": ({"browInnerUp": 1.0}, "brows", 1.0),
}
# Expressions whose direction is one StyleSpace channel instead of a distilled one (live.train.style_channels):
# name: (style layer, channel, change at coefficient 1 in channel stds). Layer 9 channel 77 was the most
# local eye channel (95% of its change inside the eyes on 6 faces); at -8 std MediaPipe shows both eyes
# 0.36 closed at a dlib distance of 0.22, where the distilled blink direction reaches 0.31 at 0.56.
STYLE_CHANNELS = {"blink": (9, 77, -8.0)}
GRID = (-2.0, -1.5, -1.0, -0.7, -0.45, -0.25, -0.1, 0.1, 0.25, 0.45, 0.7, 1.0, 1.5, 2.0)
POSE_ASKED = (-16.0, -8.0, 8.0, 16.0)  # degrees
REFINE_SEEDS = range(POOL_BASE, POOL_BASE + 24)  # pool identities of the training data


def distil(faces: GeneratedFaces, start: torch.Tensor, region: str, steps: int, outside: float = 2.0,
           batch: int = 4) -> torch.Tensor:
    """Optimise an offset [K,512] so that on the training identities it reproduces what `start` does inside
    the region and changes nothing outside it."""
    from live.inversion import Renderer

    ws = torch.cat([faces.w(s) for s in REFINE_SEEDS])
    render = Renderer(faces.gen, faces.heads[256])
    with torch.no_grad():
        neutral = render(faces.styles(ws, torch.zeros_like(start)))
        target = render(faces.styles(ws, start))
    masks = faces.region_masks(region, neutral, target, empty=0.0)
    d = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([d], lr=0.01)
    order = torch.Generator().manual_seed(0)
    with torch.enable_grad():
        for step in range(steps):
            idx = torch.randperm(len(ws), generator=order)[:batch]
            img, m = render(faces.styles(ws[idx], d)), masks[idx]
            inside = ((img - target[idx]).square() * m).sum() / (3 * m.sum()).clamp(min=1)
            rest = ((img - neutral[idx]).square() * (1 - m)).sum() / (3 * (1 - m).sum())
            loss = inside + outside * rest
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 20 == 0 or step == steps - 1:
                log.info("  distil %s: step %d/%d, inside %.4f, outside %.4f", region, step + 1, steps,
                         inside.item(), rest.item())
    return d.detach()


def response(faces: GeneratedFaces, bases: list, direction: torch.Tensor, readout: np.ndarray) -> list[dict]:
    """Mean asked-signal change and identity distance at each GRID coefficient."""
    rows = []
    for c in GRID:
        got, dist = [], []
        for w, p0, d0 in bases:
            p, _, desc = faces.read(faces.render(w, c * direction))
            if p is None:
                continue
            got.append(float(readout @ (p - p0)))
            if desc is not None:
                dist.append(faces.metric.distance(desc, d0))
        rows.append({"c": c, "got": float(np.mean(got)) if got else float("nan"),
                     "identity": float(np.mean(dist)) if dist else float("nan"), "faces": len(got)})
    return rows


# The blink channel is cheap enough to show all of it, the smile too since the avatar's own curves and the pose
# share; the jaw at 0.8 and the brows (not a target; 6x a real face's identity cost) at 0.3 (quality benchmark,
# 9 clips x identities 0,1: jaw ratio 0.577 -> 0.497, smile corr 0.63 -> 0.74, worst frame 0.519 -> 0.474).
DEFAULT_SCALES = "jaw=0.8,smile=1.0,blink=1.0,brows=0.3"


def parse_scales(text: str) -> dict[str, float]:
    """"0.6" (every expression) or "jaw=1.0,smile=0.6,..." (unnamed ones: 1.0) -> {name: scale in (0, 2]}."""
    try:
        scales = {n: float(text) for n in EXPRESSIONS} if "=" not in text else \
            {**dict.fromkeys(EXPRESSIONS, 1.0), **{k.strip(): float(v) for k, v in (x.split("=") for x in text.split(","))}}
    except ValueError:
        raise ValueError(f"{text!r} is neither a number nor NAME=VALUE,...") from None
    unknown = set(scales) - set(EXPRESSIONS)
    if unknown or not all(0 < v <= 2 for v in scales.values()):
        raise ValueError(f"names must be among {', '.join(EXPRESSIONS)} and values in (0, 2]; got {text!r}")
    return scales


def offset_layers(linear: LinearEncoder) -> int:
    """K of the calibrated encoder: the linear map's layers, and those the style channels act on."""
    return max([linear.k] + [layer + 1 for layer, _, _ in STYLE_CHANNELS.values()])


def padded(offsets: torch.Tensor, k: int) -> torch.Tensor:
    """[..., K0, 512] -> [..., k, 512] with zeros in the layers K0..k-1 (no change there)."""
    extra = k - offsets.shape[-2]
    return torch.cat([offsets, offsets.new_zeros(*offsets.shape[:-2], extra, 512)], dim=-2) if extra else offsets


def linear_columns(linear: LinearEncoder, k: int) -> torch.Tensor:
    """The linear map's columns as offsets [55,k,512]."""
    return padded(torch.from_numpy(linear.matrix).reshape(NUM_SIGNALS, linear.k, 512), k)


def style_direction(faces: GeneratedFaces, name: str) -> torch.Tensor:
    """The W+ offset [K,512] of an expression's StyleSpace channel at coefficient 1."""
    from live.train.style_channels import channel_offset, channel_std

    layer, channel, stds = STYLE_CHANNELS[name]
    spread = channel_std(faces.gen, layer + 1)[layer][channel]
    return channel_offset(faces.gen, layer, channel, stds * float(spread), faces.k)


def measure_expressions(linear: LinearEncoder, identities: int, refine_steps: int, reuse: dict | None = None,
            redo: frozenset = frozenset(), for_identity: frozenset = frozenset()) -> dict:
    """Make each expression's direction (a StyleSpace channel, or distilled from the linear map), refine the
    names in `for_identity` for identity (live.train.identity_refine), and measure its response (or take
    direction and response from `reuse`, an earlier calibration, except for the names in `redo` or
    `for_identity`), then calibrate the head-pose rows."""
    from live.assets import AssetStore

    k, idx = offset_layers(linear), SIGNAL_INDEX
    columns = linear_columns(linear, k)
    faces = GeneratedFaces(AssetStore(progress=False), k)
    out = {"directions": [], "readout": [], "responses": {}, "pose": {}, "k": k, "identity_refined": {}}
    refiner = None
    try:
        bases = []
        for seed in range(CALIBRATION_BASE, CALIBRATION_BASE + identities):
            w = faces.w(seed)
            sig, _, desc = faces.read(faces.render(w, torch.zeros(k, 512)))
            if sig is not None and desc is not None:
                bases.append((w, sig, desc))
        log.info("calibration faces: %d of %d tracked and described", len(bases), identities)
        out["faces"] = len(bases)
        out["seeds"] = f"{CALIBRATION_BASE}..{CALIBRATION_BASE + identities - 1}"
        for name, (weights, region, amp) in EXPRESSIONS.items():
            readout = np.zeros(NUM_SIGNALS, np.float32)
            for sig, wt in weights.items():
                readout[idx[sig]] = wt
            if reuse and name not in redo | for_identity:
                out["directions"].append(padded(torch.from_numpy(reuse["directions"][name]), k).numpy())
                out["readout"].append(reuse["readout"][name])
                out["responses"][name] = reuse["responses"][name]
                if name in reuse["identity_refined"]:  # keep saying how a reused direction was made
                    out["identity_refined"][name] = reuse["identity_refined"][name]
                continue
            if reuse and name not in redo:
                d = padded(torch.from_numpy(reuse["directions"][name]), k)
            elif name in STYLE_CHANNELS:
                log.info("%s: style channel %s, measuring %d coefficients", name, STYLE_CHANNELS[name], len(GRID))
                d = style_direction(faces, name)
            else:
                start = amp * sum(columns[idx[sig]] for sig in weights)
                log.info("%s: distilling (%d steps), then measuring %d coefficients", name, refine_steps, len(GRID))
                d = distil(faces, start, region, refine_steps) if refine_steps else start
            if name in for_identity:
                refiner = refiner or identity_refiner(faces)
                d, out["identity_refined"][name] = refiner.refine(name, d, region)
            out["directions"].append(d.numpy())
            out["readout"].append(readout)
            out["responses"][name] = response(faces, bases, d, readout)
        out["matrix"], out["pose"] = calibrate_pose(faces, bases, linear, out)
    finally:
        faces.close()
    return out


def identity_refiner(faces: GeneratedFaces):
    """The identity refinement's parts: the MediaPipe surrogate (live.train.surrogate) and dlib in torch."""
    from live.train.dlib_net import DlibDescriptor
    from live.train.identity_refine import Refiner
    from live.train.surrogate import load_surrogate

    return Refiner(faces, load_surrogate(), DlibDescriptor(faces.store.resolve("dlib_face_descriptor")), REFINE_SEEDS)


def pose_rows(faces: GeneratedFaces, bases: list, row: torch.Tensor, own: int, readouts: np.ndarray) -> dict:
    """Render a head-angle column at POSE_ASKED degrees: gain on its own angle, change of each expression's
    readout per degree (cross-talk), identity distance at the largest angle."""
    asked, got, cross, dist = [], [], [], []
    for deg in POSE_ASKED:
        for w, p0, d0 in bases:
            largest = deg == POSE_ASKED[-1]
            sig, _, desc = faces.read(faces.render(w, (deg / POSE_SCALE) * row), describe=largest)
            if sig is None:
                continue
            asked.append(deg)
            got.append(float(sig[own] - p0[own]) * POSE_SCALE)
            cross.append(readouts @ (sig - p0))
            if desc is not None:
                dist.append(faces.metric.distance(desc, d0))
    a = np.array(asked)
    return {"gain": float(a @ np.array(got) / (a @ a)), "cross": (a @ np.array(cross)) / (a @ a),
            "identity_at_max": float(np.mean(dist)) if dist else None}


def calibrate_pose(faces: GeneratedFaces, bases: list, linear: LinearEncoder, found: dict) -> tuple[np.ndarray, dict]:
    """Yaw and pitch rows: the linear columns scaled to unit gain, with the expression change they carry
    (a nod that also relaxes the smile, say) cancelled along the expression directions."""
    idx, k = SIGNAL_INDEX, found["k"]
    columns = linear_columns(linear, k)
    dirs = torch.from_numpy(np.stack(found["directions"]))
    readouts = np.stack(found["readout"])
    slopes = []  # each expression's signal change per unit coefficient near 0
    for rows in found["responses"].values():
        near = [(r["c"], r["got"]) for r in rows if abs(r["c"]) <= 0.45 and np.isfinite(r["got"])]
        c, g = np.array(near).T
        slopes.append(max(float(c @ g / (c @ c)), 1e-3))
    matrix, report = np.zeros((NUM_SIGNALS, k * 512), np.float32), {}
    for name in ("yaw", "pitch"):
        col = columns[idx[name]]
        before = pose_rows(faces, bases, col, idx[name], readouts)
        scale = float(np.clip(1.0 / max(before["gain"], 1e-3), 0.5, 2.5))
        per_degree = -scale * before["cross"] / np.array(slopes)  # expression coefficients that cancel it
        fix = np.clip(per_degree * POSE_SCALE, -2.0, 2.0)  # ... per unit of the signal (POSE_SCALE degrees)
        row = scale * col + torch.tensordot(torch.from_numpy(fix.astype(np.float32)), dirs, dims=1)
        after = pose_rows(faces, bases, row, idx[name], readouts)
        matrix[idx[name]] = row.reshape(-1).numpy()
        names = list(found["responses"])
        report[name] = {"gain": round(before["gain"], 3), "scale": round(scale, 3), "gain_after": round(after["gain"], 3),
                        "cross_per_16deg_before": {n: round(float(v) * 16, 3) for n, v in zip(names, before["cross"], strict=True)},
                        "cross_per_16deg_after": {n: round(float(v) * 16, 3) for n, v in zip(names, after["cross"], strict=True)},
                        "identity_at_max": round(after["identity_at_max"], 3) if after["identity_at_max"] else None}
        log.info("%s: gain %.2f -> scaled by %.2f (now %.2f); expression cross-talk per 16 deg %s -> %s", name,
                 before["gain"], scale, after["gain"], np.round(before["cross"] * 16, 3), np.round(after["cross"] * 16, 3))
    return matrix, report


def remeasured(path: Path) -> dict:
    """The directions and expression responses of an earlier calibration (to redo only curves and pose)."""
    enc = Encoder.load(path)
    m = enc.meta
    return {"directions": dict(zip(enc.names, enc.response.directions, strict=True)),
            "readout": dict(zip(enc.names, enc.response.readout, strict=True)),
            "responses": {n: m["expressions_measured"][n]["response"] for n in enc.names},
            "refine_steps": m["refine_steps"], "identity_refined": m.get("identity_refined") or {}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--linear", type=Path, default=WEIGHTS_PATH, help="the linear encoder to start from")
    p.add_argument("--refine-steps", type=int, default=80,
                   help="distillation steps per expression (0: the linear columns as they are; default 80)")
    p.add_argument("--identities", type=int, default=16, help="faces the curves are measured on (default 16)")
    p.add_argument("--identity-budget", type=float, default=0.5,
                   help="largest mean dlib distance to the neutral face a curve may reach (default 0.5)")
    p.add_argument("--expression-scale", default=DEFAULT_SCALES,
                   help="how much of the driver's expression change the avatar is asked to show: one number for "
                        f"all, or NAME=VALUE,... (default {DEFAULT_SCALES}). Below 1 an expression is shown "
                        "smaller but keeps its shape in time, where a curve that runs into --identity-budget clips "
                        "the peaks")
    p.add_argument("--frame-budget", type=float, default=0.5,
                   help="identity governor: the largest estimated identity distance of one frame's expressions "
                        "and pose together; expressions are scaled down to meet it (0: off; default 0.5)")
    p.add_argument("--pose-share", type=float, default=0.7,
                   help="largest share of --frame-budget the head pose may take: a stronger turn or nod is shown "
                        "smaller, so the expressions keep room (1: none; default 0.7)")
    p.add_argument("--recurve", type=Path, metavar="CALIBRATED",
                   help="take the distilled directions and expression responses of an earlier calibration and "
                        "redo only the curves and the pose rows (minutes: to try other budgets or scales)")
    p.add_argument("--redo", default="", metavar="NAMES",
                   help="with --recurve: make these expressions' directions anew and measure them (e.g. blink)")
    p.add_argument("--identity-refine", default="", metavar="NAMES",
                   help="refine these expressions' directions for identity through a MediaPipe surrogate and dlib's "
                        "descriptor (e.g. jaw,smile; needs python -m live.train.surrogate first; ~6 min each)")
    p.add_argument("--out", type=Path, default=CALIBRATED_PATH)
    args = p.parse_args(argv)
    try:
        scales = parse_scales(args.expression_scale)
    except ValueError as exc:
        p.error(f"--expression-scale: {exc}")
    if args.identity_budget <= 0 or args.frame_budget < 0:
        p.error("--identity-budget must be > 0 and --frame-budget >= 0")
    if not 0 < args.pose_share <= 1:
        p.error(f"--pose-share must be in (0, 1], got {args.pose_share}")
    pose_share = args.pose_share if args.frame_budget and args.pose_share < 1 else None
    redo = frozenset(n.strip() for n in args.redo.split(",") if n.strip())
    if redo - set(EXPRESSIONS):
        p.error(f"--redo: names must be among {', '.join(EXPRESSIONS)}")
    for_identity = frozenset(n.strip() for n in args.identity_refine.split(",") if n.strip())
    if for_identity - (set(EXPRESSIONS) - set(STYLE_CHANNELS)):
        p.error(f"--identity-refine: names must be among {', '.join(sorted(set(EXPRESSIONS) - set(STYLE_CHANNELS)))}")
    from live.train.surrogate import DATA

    if for_identity and not (DATA / "surrogate.safetensors").is_file():
        p.error(f"--identity-refine needs the MediaPipe surrogate ({DATA}): run python -m live.train.surrogate")
    if redo and not args.recurve:
        p.error("--redo remakes expressions of an earlier calibration: give that file with --recurve")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_grad_enabled(False)
    t0 = time.time()
    linear = LinearEncoder.load(args.linear)
    reuse = remeasured(args.recurve) if args.recurve else None
    if reuse:
        args.refine_steps = reuse["refine_steps"]
    found = measure_expressions(linear, args.identities, args.refine_steps, reuse, redo, for_identity)
    xs, ys, report = [], [], {}
    for name, rows in found["responses"].items():
        x, y = response_curve(rows, args.identity_budget)
        x = x / scales[name]  # asked x/scale -> shows x
        log.info("%s: reaches %+.3f .. %+.3f (coefficients %+.2f .. %+.2f)", name, x[0], x[-1], y[0], y[-1])
        xs.append(x)
        ys.append(y)
        report[name] = {"reach_shown": [round(float(x[0]) * scales[name], 3), round(float(x[-1]) * scales[name], 3)],
                        "reach_asked": [round(float(x[0]), 3), round(float(x[-1]), 3)],
                        "response": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
                                     for r in rows]}
    cx, cy = pad_points(xs, ys)
    names = list(found["responses"])
    costs = [cost_points([r["c"] for r in rows], [r["identity"] for r in rows])
             for rows in found["responses"].values()]
    cost_c, cost_id = pad_points([c for c, _ in costs], [d for _, d in costs])
    pose_cost = np.array([(found["pose"][n]["identity_at_max"] or 0.0) / POSE_ASKED[-1] for n in ("yaw", "pitch")],
                         np.float32)
    governor = Governor.of(tuple(names), args.frame_budget, cost_c, cost_id, pose_cost, pose_share) \
        if args.frame_budget else None
    response = AvatarResponse(tuple(names), found["k"], found["matrix"].astype(np.float32),
                              np.stack(found["directions"]).astype(np.float32),
                              np.stack(found["readout"]).astype(np.float32), cx.astype(np.float32),
                              cy.astype(np.float32), np.array([scales[n] for n in names], np.float32), governor,
                              None, None, None, args.identity_budget)
    meta = {"kind": "calibrated (pose: linear columns x measured gain; expressions: distilled directions x "
                    "measured response curves)",
            "generator_sha256": linear.meta.get("generator_sha256"), "k": found["k"],  # + response.meta() on save
            "style_channels": {n: dict(zip(("layer", "channel", "stds"), v)) for n, v in STYLE_CHANNELS.items()},
            "linear": {"file": args.linear.name, "sha256": hashlib.sha256(args.linear.read_bytes()).hexdigest()},
            "refine_steps": args.refine_steps, "refine_seeds": f"{REFINE_SEEDS.start}..{REFINE_SEEDS.stop - 1}",
            "calibration_seeds": found["seeds"], "calibration_faces": found["faces"],
            "frame_budget": args.frame_budget or None, "pose_share": pose_share,
            "min_reach": MIN_REACH, "min_step": MIN_STEP, "dead_zone": DEAD_ZONE,
            "pose": found["pose"], "expressions_measured": report,
            "seconds": round(time.time() - t0, 1), "recurved_from": args.recurve.name if args.recurve else None,
            "recurved_from_sha256": hashlib.sha256(args.recurve.read_bytes()).hexdigest() if args.recurve else None,
            "redone": sorted(redo) or None, "identity_refined": found["identity_refined"] or None,
            "date": datetime.date.today().isoformat(), "torch": torch.__version__}
    Encoder(response, meta).save(args.out)
    log.info("wrote %s (%.0f s)", args.out, time.time() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
