"""`live run` and `live demo`: the full reenactment pipeline from the command line."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from live.config import Config

log = logging.getLogger("live")

def _synthesis_config(cfg: Config, args: argparse.Namespace, seed: int, identity_file: Path | None = None) -> None:
    cfg.synthesis.seed = seed
    cfg.synthesis.identity_file = identity_file
    cfg.synthesis.size = args.size
    cfg.synthesis.backend = args.backend
    cfg.synthesis.device = args.device
    cfg.encoder.fit_avatar = not args.no_avatar_fit


def cmd_run(args: argparse.Namespace, store, status_line) -> int:
    from live.pipeline import Pipeline
    from live.stages import build_stage
    from live.stages.capture import open_capture
    from live.stages.file import FileSink
    from live.stats import format_summary

    if args.preview:
        from live.stages.preview import require_display

        require_display()
    cfg = Config()
    from live.cli_enroll import resolve_identity

    _synthesis_config(cfg, args, *resolve_identity(args.identity, store))
    cfg.encoder.relative = not args.absolute
    source = open_capture(args.input, realtime=args.realtime, loop=args.loop, max_frames=args.max_frames)
    sinks = [FileSink(video=args.output, fps=source.fps, side_by_side=args.side_by_side)]
    if args.vcam:
        from live.stages.vcam import VcamSink

        sinks.append(VcamSink(args.size, args.size, fps=args.vcam_fps, device=args.vcam_device))
    stages = [build_stage(name, cfg, store) for name in ("tracking", "encoder", "synthesis")] + sinks
    live_input = args.realtime or source.kind == "camera"
    if args.preview:
        from live.stages.preview import PreviewSink

        stages.append(PreviewSink(stages[1].controls, on_stop=lambda: pipeline.stop()))
    pipeline = Pipeline(source, stages, lossless=not live_input, warmup=cfg.pipeline.warmup)
    status = status_line(pipeline)
    pipeline.on_frame = status
    log.info("reenacting %s with identity %s at %d px (%s)", args.input, args.identity, args.size, args.backend)
    try:
        result = pipeline.run()
    finally:
        status.end()
    print(format_summary(result.summary))
    if args.output:
        print(f"wrote {args.output}")
    return 130 if result.interrupted else 0


def cmd_demo(args: argparse.Namespace, store, status_line) -> int:
    from live.demo import ScriptedSource
    from live.pipeline import Pipeline
    from live.stages import build_stage
    from live.stages.file import FileSink
    from live.stats import format_summary

    cfg = Config()
    _synthesis_config(cfg, args, args.seed)
    source = ScriptedSource(fps=args.fps)
    sink = FileSink(video=args.output, fps=args.fps)
    stages = [build_stage("encoder", cfg, store), build_stage("synthesis", cfg, store), sink]
    pipeline = Pipeline(source, stages, lossless=True, warmup=3)
    status = status_line(pipeline)
    pipeline.on_frame = status
    try:
        result = pipeline.run()
    finally:
        status.end()
    print(format_summary(result.summary))
    print(f"wrote {args.output}: {result.frames} frames of seed {args.seed} at {args.size}x{args.size}, "
          f"{args.fps:g} fps (smile, blink, jaw open, brows, turn left/right, nod)")
    return 130 if result.interrupted else 0
