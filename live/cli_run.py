"""`live run` and `live demo`: the full reenactment pipeline from the command line."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from live.config import Config

log = logging.getLogger("live")

SHARP_FRAME_HEIGHT = 540  # frames this tall get a 512² avatar where synthesis is fast enough (a GPU)
DEFAULT_FRAME = "1280x720"  # what a webcam sends: the frame for --vcam and `live serve` unless --frame says otherwise


def synthesis_config(args: argparse.Namespace, seed: int = 0, identity_file: Path | None = None,
                     default_frame: str = "avatar") -> Config:
    """A config with the synthesis, avatar-fit and frame options every command that drives an avatar shares.
    default_frame: the frame size when --frame is not given ("avatar" or "WxH")."""
    from live.compose import parse_frame

    cfg = Config()
    cfg.synthesis.seed = seed
    cfg.synthesis.identity_file = identity_file
    cfg.frame.size = parse_frame(args.frame or default_frame)
    if args.size is None:  # measured: benchmarks/FRAME.md (sharpness in a 720p frame against synthesis time)
        tall = cfg.frame.size is not None and cfg.frame.size[1] >= SHARP_FRAME_HEIGHT
        args.size = 512 if tall and args.device.startswith("cuda") else 256
    cfg.synthesis.size = args.size
    cfg.synthesis.backend = args.backend
    cfg.synthesis.device = args.device
    cfg.synthesis.head = args.head
    cfg.encoder.fit_avatar = not args.no_avatar_fit
    cfg.encoder.rest = args.rest
    if not 0 <= args.warp_strength <= 2:
        raise ValueError(f"--warp-strength must be within 0..2, got {args.warp_strength:g}")
    cfg.warp.enabled, cfg.warp.strength = args.warp, args.warp_strength
    cfg.frame.fixed_head = args.fixed_head
    if args.fixed_head and cfg.frame.size is None:
        log.warning("--fixed-head applies to a frame (--frame WxH); the avatar's square has no head to move")
    return cfg


def cmd_run(args: argparse.Namespace, store, status_line) -> int:
    from live.cli_enroll import resolve_identity
    from live.controls import Controls
    from live.pipeline import Pipeline
    from live.stages import STAGE_NAMES, build_stages
    from live.stages.capture import open_capture
    from live.stages.file import FileSink, guard_outputs
    from live.stats import format_summary

    if args.preview:
        from live.stages.preview import require_display

        require_display()
    guard_outputs([args.output], [args.input, args.identity], args.overwrite)
    cfg = synthesis_config(args, *resolve_identity(args.identity, store),
                           default_frame=DEFAULT_FRAME if args.vcam else "avatar")
    cfg.encoder.relative = not args.absolute
    source = open_capture(args.input, realtime=args.realtime, loop=args.loop, max_frames=args.max_frames)
    sinks = [FileSink(video=args.output, fps=source.fps, side_by_side=args.side_by_side)]
    if args.vcam:
        from live.stages.vcam import VcamSink

        width, height = cfg.frame.size or (args.size, args.size)
        sinks.append(VcamSink(width, height, fps=args.vcam_fps, device=args.vcam_device))
    controls = Controls(expression_gain=cfg.encoder.expression_gain, pose_gain=cfg.encoder.pose_gain,
                        warp_strength=cfg.warp.strength)
    stages = build_stages(STAGE_NAMES, cfg, store, controls=controls) + sinks
    stages[0].open()  # the tracker, on the main thread: its start-up chatter to the debug log
    live_input = args.realtime or source.kind == "camera"
    if args.preview:
        from live.stages.preview import PreviewSink

        stages.append(PreviewSink(controls, on_stop=lambda: pipeline.stop()))
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
    from live.stages import build_stages
    from live.stages.file import FileSink, guard_outputs
    from live.stats import format_summary

    guard_outputs([args.output], [], args.overwrite)
    cfg = synthesis_config(args, args.seed)
    source = ScriptedSource(fps=args.fps)
    sink = FileSink(video=args.output, fps=args.fps)
    stages = build_stages(("encoder", "synthesis", "warp", "compose"), cfg, store) + [sink]
    pipeline = Pipeline(source, stages, lossless=True, warmup=3)
    status = status_line(pipeline)
    pipeline.on_frame = status
    try:
        result = pipeline.run()
    finally:
        status.end()
    print(format_summary(result.summary))
    width, height = cfg.frame.size or (args.size, args.size)
    print(f"wrote {args.output}: {result.frames} frames of seed {args.seed} at {width}x{height}, "
          f"{args.fps:g} fps (smile, blink, jaw open, brows, "
          f"turn left/right, nod, pout, lip press, squint)")
    return 130 if result.interrupted else 0
