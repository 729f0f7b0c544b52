"""The call-ready frame on enrolled portraits: paste-back exactness, the seam, a strip and a video per portrait.

    python benchmarks/frame.py                     # ../shared/data/portraits x 3 shared clips, 1280x720
    python benchmarks/frame.py --portraits s1.jpg --clips d0 --frames 60 --out /tmp/frame

Per portrait (enrolled at --quality fast, cached; a portrait that cannot be enrolled is listed with its message),
each clip drives it through the one pipeline (tracking, encoder, synthesis, compose) twice: with --fixed-head,
where every pixel outside the paste mask (as pasted: turned with the avatar's roll; 2 px margin) must be the
photo's (`outside_changed`: the share that is not; 0), and
with the head moving, which is what the video shows. Measured per frame:
- seam: the gradient energy (|Sobel x| + |Sobel y| of the grey image) of the frame in the mask's feather band
  (0.1 < mask < 0.9) over the photo's in the same band: 1 = the blend adds no edge; an avatar sharper or softer
  than the photo moves it either way, a visible seam pushes it up;
- seam_step: the mean colour difference (0-255) between the frame and the photo just outside the mask's edge
  (0.02 < mask < 0.1), where the blend is mostly photo: a tone mismatch the colour match did not take out shows here;
- compose ms (the stage's p50 in the run, with the other stages beside it).
Writes --out/frame-portraits.json, a strip per portrait (photo | frame at rest | driven frames) and a 640x360
H.264 video per portrait (the clips one after another, head moving).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fps import machine_info

from live.assets import AssetStore
from live.avatar import load_avatar
from live.cli_enroll import resolve_identity
from live.compose import pasted_mask
from live.config import Config
from live.pipeline import Pipeline
from live.stages import build_stages
from live.stages.capture import open_capture
from live.stages.file import NullSink
from live.video_file import VideoWriter

log = logging.getLogger("benchmarks.frame")
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
STRIP_HEIGHT = 180  # each picture of the strip is scaled to this height
VIDEO_SIZE = (640, 360)


def gradient(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))


class Probe:
    """Observes the frames as they leave the pipeline: seam measures, kept frames, the video."""

    def __init__(self, scene, keep_every: int, writer: VideoWriter | None, fixed: bool):
        self.scene, self.fixed = scene, fixed
        self.band = (scene.rest_mask > 0.1) & (scene.rest_mask < 0.9)
        self.edge = (scene.rest_mask > 0.02) & (scene.rest_mask < 0.1)
        self.photo_energy = float(gradient(scene.background)[self.band].mean())
        self.keep_every, self.writer = keep_every, writer
        self.seams, self.steps, self.changed, self.kept = [], [], [], []

    def __call__(self, frame) -> None:
        image = frame.output
        self.seams.append(float(gradient(image)[self.band].mean()) / self.photo_energy)
        diff = np.abs(image.astype(np.int16) - self.scene.background)
        self.steps.append(float(diff[self.edge].mean()))
        if self.fixed:  # outside the mask as this frame pasted it (turned by the avatar's roll), 2 px margin
            outside = cv2.dilate(pasted_mask(self.scene, None, frame.avatar_roll), np.ones((5, 5), np.uint8)) == 0
            self.changed.append(float((diff[outside].max(axis=1) > 0).mean()))
        if frame.seq % self.keep_every == 0:
            self.kept.append(image)
        if self.writer is not None:
            self.writer.write(cv2.resize(image, VIDEO_SIZE, interpolation=cv2.INTER_AREA))


def drive(cfg: Config, store: AssetStore, avatar, clip: Path, frames: int, fixed_head: bool, writer=None):
    """(Probe, compose p50 ms) of one clip driving `avatar` (cfg's identity, loaded once)."""
    cfg.frame.fixed_head = fixed_head
    stages = build_stages(("tracking", "encoder", "synthesis", "compose"), cfg, store, avatar)
    compose = stages[-1]
    probe_box = {}

    def on_frame(frame) -> None:
        if "probe" not in probe_box:
            probe_box["probe"] = Probe(compose.scene, max(1, frames // 3), writer, fixed_head)
        probe_box["probe"](frame)

    source = open_capture(str(clip), max_frames=frames)
    result = Pipeline(source, stages + [NullSink()], lossless=True, warmup=3, on_frame=on_frame).run()
    return probe_box["probe"], result.summary["stages"]["compose"]["p50_ms"]


def strip(photo: np.ndarray, pictures: list[np.ndarray]) -> np.ndarray:
    def scaled(image):
        return cv2.resize(image, (round(image.shape[1] * STRIP_HEIGHT / image.shape[0]), STRIP_HEIGHT),
                          interpolation=cv2.INTER_AREA)

    parts = [scaled(photo)] + [scaled(p) for p in pictures]
    gap = np.full((STRIP_HEIGHT, 4, 3), 255, np.uint8)
    return np.hstack([x for p in parts for x in (p, gap)][:-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--portraits", help="comma-separated image files (default: ../shared/data/portraits/*.jpg)")
    p.add_argument("--clips", default="d0,d10,d12", help="shared clips (names in ../shared/data/driving) or files")
    p.add_argument("--frames", type=int, default=90, help="frames of each clip (default 90)")
    p.add_argument("--frame", default="1280x720", help="frame size (default 1280x720)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "frame",
                   help="folder for the JSON, strips and videos (default benchmarks/results/frame)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from live.compose import parse_frame
    from live.enroll import EnrollError

    portraits = [Path(x) for x in args.portraits.split(",")] if args.portraits \
        else sorted((SHARED / "portraits").glob("*.jpg"))
    clips = [Path(c) if Path(c).suffix else SHARED / "driving" / f"{c}.mp4" for c in args.clips.split(",")]
    missing = [str(x) for x in portraits + clips if not x.is_file()]
    if missing or not portraits:
        p.error(f"not found: {', '.join(missing) or 'no portraits'} (../shared/data beside the checkout?)")
    args.out.mkdir(parents=True, exist_ok=True)
    store = AssetStore(progress=sys.stderr.isatty())
    rows = []
    for portrait in portraits:
        try:
            _, identity_file = resolve_identity(str(portrait), store)
        except EnrollError as exc:
            rows.append({"portrait": portrait.name, "refused": str(exc)})
            log.info("%s: refused: %s", portrait.name, exc)
            continue
        cfg = Config()
        cfg.synthesis.identity_file, cfg.synthesis.backend = identity_file, "torch"
        cfg.frame.size = parse_frame(args.frame)
        avatar = load_avatar(cfg, store)
        row = {"portrait": portrait.name, "clips": {}}
        writer = VideoWriter(args.out / f"{portrait.stem}.mp4", 25.0, VIDEO_SIZE)
        shown, rest = [], None
        try:
            for clip in clips:
                fixed, ms_fixed = drive(cfg, store, avatar, clip, args.frames, True)
                moving, ms_moving = drive(cfg, store, avatar, clip, args.frames, False, writer)
                rest = fixed.kept[0] if rest is None else rest  # the first frame: the driver at their neutral
                shown.append(moving.kept[len(moving.kept) // 2])
                row["clips"][clip.stem] = {
                    "outside_changed_fixed_head": max(fixed.changed),
                    "seam_median": round(float(np.median(fixed.seams)), 3),
                    "seam_worst": round(float(np.max(fixed.seams)), 3),
                    "seam_step_median": round(float(np.median(fixed.steps)), 2),
                    "seam_moving_median": round(float(np.median(moving.seams)), 3),
                    "compose_p50_ms": {"fixed_head": ms_fixed, "moving": ms_moving}}
                log.info("%s x %s: %s", portrait.name, clip.stem, row["clips"][clip.stem])
        finally:
            writer.close()
        cv2.imwrite(str(args.out / f"{portrait.stem}.png"),
                    cv2.cvtColor(strip(avatar.photo, [rest, *shown]), cv2.COLOR_RGB2BGR))
        rows.append(row)
    summary = {"frame": args.frame, "frames_per_clip": args.frames, "clips": [c.stem for c in clips],
               "portraits": rows, "machine": machine_info()}
    (args.out / "frame-portraits.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps([{"portrait": r["portrait"], **({"refused": r["refused"][:60]} if "refused" in r else {
        k: [c[k] for c in r["clips"].values()] for k in ("outside_changed_fixed_head", "seam_median",
                                                          "seam_step_median")})} for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
