"""How well the predicted render mesh (live.avatar_mesh) matches MediaPipe's tracking of the render.

Drives identities with shared clips through tracking, the encoder and synthesis, then compares, on every frame,
the mesh predicted from the frame's offset with MediaPipe on the render: in VIDEO mode (what the observed warp
residual uses, with its temporal filtering) and IMAGE mode (each render on its own, as the probes are tracked).
Reported in pixels at the render's size, on the points the warp moves (live.transfer.MOVED) and on the face oval,
and for the motion the residual takes off (pose removed, live.transfer.motion), with the tracker's own
frame-to-frame jitter beside it (VIDEO minus IMAGE on the same render).

    python benchmarks/avatar_mesh_check.py --identities 0,1 --clips d0,d12 [--max-frames 150] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from fps import machine_info
from quality import SHARED, driver_frames

from live import mesh, transfer
from live.assets import AssetStore

log = logging.getLogger("avatar_mesh_check")


def px(a: np.ndarray, b: np.ndarray, idx) -> float:
    """Mean distance (x, y) between two meshes' points idx."""
    return float(np.linalg.norm(a[list(idx), :2] - b[list(idx), :2], axis=1).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--identities", default="0,1", help="comma-separated seeds")
    p.add_argument("--clips", default="d0,d12", help="comma-separated stems in ../shared/data/driving or paths")
    p.add_argument("--max-frames", type=int, default=150)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from live.avatar import load_avatar
    from live.avatar_mesh import AvatarMesh, encoder_directions
    from live.config import Config
    from live.landmarker import FaceTracker
    from live.pipeline import Pipeline
    from live.stages import build_stages, avatar_render
    from live.stages.capture import FrameList

    store = AssetStore(progress=sys.stderr.isatty())
    model = store.resolve("face_landmarker")
    rows = []
    for clip in args.clips.split(","):
        path = Path(clip) if Path(clip).suffix else SHARED / f"{clip}.mp4"
        name, frames, _ = driver_frames(str(path), args.max_frames, model)
        for seed in args.identities.split(","):
            cfg = Config()
            cfg.synthesis.seed, cfg.synthesis.backend = int(seed), "torch"
            avatar = load_avatar(cfg, store)
            image_mode = FaceTracker(model, num_faces=1, max_side=4096, video=False)
            video_mode = FaceTracker(model, num_faces=1, max_side=4096)

            def track(tracker, image, t=0.0):
                faces = tracker.detect(image, t)
                return mesh.to_pixels(faces[0].landmarks, image.shape[1], image.shape[0]) if faces else None

            render = avatar_render(cfg, avatar)
            model_mesh = AvatarMesh.measure(render, lambda im, tr=image_mode: track(tr, im),
                                            encoder_directions(avatar.encoder, avatar.emotion), avatar.k)
            out = []
            stages = build_stages(("encoder", "synthesis"), cfg, store, avatar)
            Pipeline(FrameList(frames), stages, lossless=True, on_frame=out.append).run()
            neutral = model_mesh.neutral
            err = {"moved_video": [], "moved_image": [], "oval_image": [], "motion_video": [], "motion_image": [],
                   "tracker_jitter": [], "latent_motion": []}
            for i, f in enumerate(out):
                pred = model_mesh.predict(f.offset, f.avatar_roll)
                vid, img = track(video_mode, f.output, i / 25), track(image_mode, f.output)
                if vid is None or img is None:
                    continue
                moved = transfer.MOVED
                err["moved_video"].append(px(pred, vid, moved))
                err["moved_image"].append(px(pred, img, moved))
                err["oval_image"].append(px(pred, img, mesh.FACE_OVAL))
                m_pred = transfer.motion(pred, neutral)
                for key, tracked in (("motion_video", vid), ("motion_image", img)):
                    d = np.linalg.norm(m_pred[list(moved)] - transfer.motion(tracked, neutral)[list(moved)], axis=1)
                    err[key].append(float(d.mean()))
                err["tracker_jitter"].append(px(vid, img, moved))
                err["latent_motion"].append(float(np.linalg.norm(transfer.motion(img, neutral)[list(moved)],
                                                                 axis=1).mean()))
            row = {"clip": name, "identity": seed, "frames": len(err["moved_video"]),
                   **{k: round(float(np.mean(v)), 3) for k, v in err.items()}}
            log.info("%s", json.dumps(row))
            rows.append(row)
    keys = [k for k in rows[0] if k not in ("clip", "identity", "frames")]
    mean = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in keys}
    print("mean over pairs (pixels at 256²):", json.dumps(mean))
    if args.json:
        Path(args.json).write_text(json.dumps({"pairs": rows, "mean": mean, "machine": machine_info()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
