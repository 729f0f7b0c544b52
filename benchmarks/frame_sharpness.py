"""Which synthesis size a frame needs: the face's sharpness in a 1280x720 frame against the cost of making it.

    python benchmarks/frame_sharpness.py --seeds 20,21,22,23 --frame 1280x720

At 1280x720 the FFHQ crop spans the frame's height (720 px) and the face ~400 px: a 256² avatar is enlarged 2.8x,
a 512² one 1.4x. For a generated identity the frame's background at rest *is* the generator's own 1024² picture,
so the pasted face can be scored against the truth: LPIPS (VGG16) and the gradient-energy ratio (sharpness: 1 = as
sharp as the 1024² picture) over the face's box, at rest. Variants: 256² and 512² early-exit heads, each pasted
with bilinear (the compose stage's) or bicubic enlargement, and 256² with an unsharp mask before the paste. The
synthesis p50 of each size (plain torch, this machine) and the paste's p50 are timed beside.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fps import machine_info

from live.assets import AssetStore
from live.compose import compose, make_scene, parse_frame
from live.config import Config


def unsharp(image: np.ndarray, amount: float = 0.6, sigma: float = 1.0) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0)


def energy(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.mean(np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))))


def timed(fn, runs: int = 7) -> float:
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="20,21,22,23", help="generated identities (default 20,21,22,23)")
    p.add_argument("--frame", default="1280x720")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    from live.avatar import load_avatar
    from live.landmarker import FaceTracker
    from live.mesh import to_pixels
    from live.models.lpips import load_lpips
    from live.render import SynthesisNet, to_uint8
    from live.stages import scene_parts

    torch.set_grad_enabled(False)
    store = AssetStore(progress=sys.stderr.isatty())
    lpips = load_lpips(store)
    size = parse_frame(args.frame)
    tracker = FaceTracker(store.resolve("face_landmarker"), num_faces=1, max_side=4096, video=False)
    variants = {"256 bilinear": (256, None), "256 bicubic": (256, "cubic"), "256 unsharp": (256, "unsharp"),
                "512 bilinear": (512, None), "512 bicubic": (512, "cubic")}
    scores: dict[str, dict[str, list]] = {v: {"lpips": [], "sharpness": [], "paste_ms": []} for v in variants}
    synth_ms: dict[int, list[float]] = {256: [], 512: []}
    for seed in (int(s) for s in args.seeds.split(",")):
        cfg = Config()
        cfg.synthesis.seed = seed
        avatar = load_avatar(cfg, store, fit=False)
        photo, quad, _, _ = scene_parts(cfg, store, avatar)  # the 1024² picture: the truth at rest
        for side in (256, 512):
            net = SynthesisNet(avatar.generator, avatar.styles, avatar.k, side, True)
            zero = torch.zeros(1, avatar.k, 512)
            rest = to_uint8(net(zero).numpy())
            synth_ms[side].append(timed(lambda n=net, z=zero: n(z)))
            face = tracker.detect(rest, 0.0)[0]
            points = to_pixels(face.landmarks, side, side)
            for name, (vside, how) in variants.items():
                if vside != side:
                    continue
                shown = unsharp(rest) if how == "unsharp" else rest
                scene = make_scene(photo, quad, shown, points, size)
                flag = cv2.INTER_CUBIC if how == "cubic" else cv2.INTER_LINEAR
                out = compose(scene, shown, interpolation=flag)
                paste = timed(lambda s=scene, a=shown, f=flag: compose(s, a, interpolation=f))
                scores[name]["paste_ms"].append(paste)
                ys, xs = np.nonzero(scene.rest_mask > 0.99)
                box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
                truth, got = scene.background[box], out[box]
                scores[name]["sharpness"].append(energy(got) / energy(truth))
                t = torch.from_numpy(np.stack([truth, got])).permute(0, 3, 1, 2).float() / 127.5 - 1
                scores[name]["lpips"].append(float(lpips(t[:1], t[1:]).item()))
        print(f"seed {seed}: " + ", ".join(f"{n} {scores[n]['lpips'][-1]:.3f}" for n in variants), flush=True)
    tracker.close()
    rows = {n: {k: round(float(np.median(v)), 3) for k, v in s.items()} for n, s in scores.items()}
    result = {"frame": args.frame, "seeds": args.seeds, "variants": rows,
              "synthesis_p50_ms": {str(k): round(float(np.median(v)), 1) for k, v in synth_ms.items()},
              "machine": machine_info()}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
