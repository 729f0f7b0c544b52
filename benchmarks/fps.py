"""Per-stage timing, throughput, capture->sink latency and drops of a live pipeline.

    python benchmarks/fps.py                          # on a clip the benchmark makes itself
    python benchmarks/fps.py --input ../shared/data/driving/d3.mp4 --json
    python benchmarks/fps.py --input 0 --frames 300   # a camera
    python benchmarks/fps.py --realtime               # paced like a camera: shows drops and latency
    python benchmarks/fps.py --stages synthesis --backends torch,onnxruntime,openvino --frames 20

Warm-up frames are left out. `--json PATH` writes {"stages": {NAME: {"p50_ms", "p95_ms", "max_ms",
"frames"}}, "fps", "latency_ms": {"p50", "p95"}, "dropped": {QUEUE: n}, "paced": {...} (live runs whose first
stage was held back for a slower one), "machine": {...}, "run": {...}};
`--json` alone prints it after the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path

from live.assets import AssetStore
from live.avatar import load_avatar
from live.compose import parse_frame
from live.config import Config
from live.pipeline import Pipeline
from live.stages import STAGE_NAMES, build_stages
from live.stages.capture import open_capture
from live.stages.file import NullSink
from live.stats import format_summary

log = logging.getLogger("benchmarks.fps")


def machine_info() -> dict:
    from live.train.live_heads import cpu_flags

    cpu, flags = cpu_flags()
    info = {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_flags": " ".join(flags),
            # ISA caps the runtimes honour (benchmarks/SPEED.md): an AVX-512 machine measuring the AVX2 case
            "isa_caps": {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if k in os.environ}}
    for mod in ("numpy", "cv2", "mediapipe", "torch", "onnxruntime", "openvino"):
        m = sys.modules.get(mod)
        if m is not None:
            info[mod] = getattr(m, "__version__", "?")
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", help="camera index, video, image or folder (default: a clip made here)")
    p.add_argument("--stages", default="tracking", help=f"comma-separated, in order (known: {', '.join(STAGE_NAMES)})")
    p.add_argument("--frames", type=int, help="stop after this many frames (default: whole input, 300 for cameras)")
    p.add_argument("--warmup", type=int, default=10, help="frames left out of the numbers (default 10)")
    p.add_argument("--realtime", action="store_true",
                   help="pace files to their frame rate and drop late frames, as with a camera")
    p.add_argument("--no-pace", action="store_true",
                   help="with --realtime: let the first stage work on every frame it can, even those the slowest "
                        "stage will drop (the default starts them just in time for it: live/pacing.py)")
    p.add_argument("--loop", action="store_true", help="repeat the input (use with --frames)")
    p.add_argument("--smoothing", type=float, default=1.0, help="tracking One-Euro strength (0 = off)")
    p.add_argument("--max-side", type=int, default=640, help="tracking input's longest side")
    p.add_argument("--num-faces", type=int, default=2, help="faces MediaPipe looks for")
    p.add_argument("--backends", default="torch",
                   help="synthesis backends, comma-separated: one pipeline run each (torch, torch-compile, "
                        "torch-compile-bf16, onnxruntime, openvino, tensorrt)")
    p.add_argument("--size", type=int, default=256, help="synthesis output side: 256, 512 or 1024")
    p.add_argument("--k", type=int, help="style layers that take the per-frame offset, without the encoder stage "
                                        "(default: the encoder's, 10)")
    p.add_argument("--device", default="cpu", help="synthesis device: cpu or cuda")
    p.add_argument("--head", choices=["auto", "learned", "linear"], default="auto",
                   help="the early exit's head, as `live run --head`: auto (default), learned or linear")
    p.add_argument("--frame", default="1280x720",
                   help="frame size the compose stage makes (WxH; with 'compose' in --stages; default 1280x720)")
    p.add_argument("--fixed-head", action="store_true", help="the compose stage keeps the head where the photo has it")
    p.add_argument("--engines", type=Path, metavar="DIR",
                   help="where the ONNX-based backends find (or export) their model (default: engines/); "
                        "benchmarks/avx2_bound.py puts a quantised one there")
    p.add_argument("--json", nargs="?", const="-", metavar="PATH", help="write JSON to PATH (alone: print it)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    cfg = Config()
    cfg.tracking.smoothing, cfg.tracking.max_side = args.smoothing, args.max_side
    cfg.tracking.num_faces = args.num_faces
    cfg.synthesis.size, cfg.synthesis.k, cfg.synthesis.device = args.size, args.k, args.device
    cfg.synthesis.head, cfg.synthesis.engines = args.head, args.engines
    names = [n.strip() for n in args.stages.split(",") if n.strip()]
    if args.k is not None and "encoder" in names:
        p.error("--k is the encoder's when the encoder stage runs: leave it out")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()] if "synthesis" in names else [None]
    store = AssetStore(progress=sys.stderr.isatty())
    needs_avatar = "encoder" in names or "synthesis" in names
    avatar = load_avatar(cfg, store, fit="encoder" in names) if needs_avatar else None  # once for every backend
    summary: dict = {"stages": {}, "per_backend": {}}
    with tempfile.TemporaryDirectory(prefix="live-fps-") as tmp:
        spec = args.input
        if spec is None:
            from live.samples import moving_clip

            spec = str(moving_clip(Path(tmp) / "astronaut.mp4", frames=150))
            log.info("input: a 150-frame 512x512 clip of scikit-image's astronaut made for this run")
        for backend in backends:
            if backend:
                cfg.synthesis.backend = backend
            frames = args.frames or (300 if spec.strip().isdigit() else None)
            source = open_capture(spec, realtime=args.realtime, loop=args.loop, max_frames=frames)
            cfg.warp.enabled = "warp" in names  # named: measured, whatever the default
            cfg.frame.size = parse_frame(args.frame) if "compose" in names else None
            cfg.frame.fixed_head = args.fixed_head
            stages = build_stages(names, cfg, store, avatar)
            lossless = not (args.realtime or source.kind == "camera")
            paced = not (lossless or args.no_pace)
            result = Pipeline(source, stages + [NullSink()], lossless=lossless, warmup=args.warmup,
                              pace=paced).run()
            run = result.summary
            summary["stages"].update(run["stages"])
            shown = {k: run[k] for k in ("fps", "latency_ms", "dropped", "paced") if k in run}
            for key, value in shown.items():
                summary.setdefault(key, value)  # top level: the first run
            if backend:
                summary["per_backend"][backend] = shown
    summary["machine"] = machine_info()
    summary["run"] = {"input": args.input or "generated astronaut clip", "frames": result.frames,
                      "warmup": args.warmup, "mode": "lossless" if lossless else "realtime (drop oldest)",
                      "source_fps": source.fps, "paced": paced, "stages": names,
                      "backends": [b for b in backends if b],
                      "size": args.size, "head": args.head, "frame": args.frame if "compose" in names else "avatar",
                      "k": avatar.k if args.k is None and avatar else args.k}
    print(format_summary(summary))
    if args.json == "-":
        print(json.dumps(summary, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    raise SystemExit(main())
