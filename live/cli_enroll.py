"""`live enroll`, and turning `--identity` (seed:N, identity file or portrait) into what synthesis uses."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("live")

ENROLL_EPILOG = """\
examples:
  live enroll me.jpg -o me.identity                  4-10 minutes on a 2-core CPU (tuned)
  live enroll me.jpg -o me.identity --no-tune        3-6 minutes, softer and less like you
  live enroll me.jpg -o me.identity --quality best   11-26 minutes, closer likeness
  live run --identity me.identity --input 0          drive it with camera 0

The photo: one person, face towards the camera, at least 128 px across (eyes ~32 px apart); larger is
better up to ~1000 px. Several faces: the largest is used. Grayscale works (the avatar stays grey).
The identity file holds the latent, the aligned crop, your photo around the face (--no-photo leaves it out),
the generator's sha256 and the measured fidelity
(LPIPS, and dlib's identity distance: < 0.6 is the same person by dlib's rule). dlib's face models (122 MB)
are downloaded once for the tuning's identity term; --identity-metric off tunes without them.
Enrolling the same photo again reuses the cached result.
"""
EST_SECONDS = {"fast": 160, "best": 480}  # 2-core Zen 4 (AVX-512 bf16), measured (README)
SLOW_CPU_FACTOR = 2.3  # a 2-core Zen 3 (AVX2 only) took 382 s for what took 166 s on the Zen 4
TUNE_EST_S = {"fast": 90, "best": 225}  # pivotal tuning (80 / 200 steps, ~1.1 s each), 2-core Zen 4


def add_enroll_parser(sub, add_common) -> None:
    e = sub.add_parser("enroll", help="turn one portrait into an identity file the avatar keeps",
                       description="Find the face, align it, invert it into the generator's W+ space "
                                   "(LPIPS + pixel loss), tune the avatar's 256² network to it (--no-tune skips), measure the "
                                   "likeness, and write NAME.identity (safetensors, written atomically).",
                       epilog=ENROLL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("portrait", type=Path, help="image file (JPEG, PNG, WebP, BMP, TIFF)")
    e.add_argument("-o", "--output", type=Path, help="identity file to write (default: PORTRAIT.identity)")
    e.add_argument("-y", "--overwrite", action="store_true",
                   help="replace an identity file that already exists (without it, it is refused)")
    e.add_argument("--quality", choices=["fast", "best"], default="fast",
                   help="fast (default, 4-9 min on 2 cores) or best (11-26 min: more steps, LPIPS at full size)")
    tune_s = TUNE_EST_S["fast"]
    e.add_argument("--tune", action=argparse.BooleanOptionalAction, default=True,
                   help="pivotal tuning (default on): after the inversion, tune the avatar's own 256² synthesis "
                        f"network to this photo (likeness and detail; expressions and head turns kept; ~{tune_s} s more, "
                        "~0.9 MB in the identity file). Measured on real clips enrolled from their first frame: "
                        "LPIPS to the real frames 0.43 -> 0.33 (benchmarks/QUALITY.md). --no-tune skips it. Reuses "
                        "the inversion of an earlier enrollment of the same photo")
    e.add_argument("--steps", type=int, help="override the number of inversion steps (tests, experiments)")
    e.add_argument("--no-cache", action="store_true", help="enroll again even if this photo was enrolled before")
    e.add_argument("--no-photo", action="store_true",
                   help="leave the photo out of the identity file (by default it keeps the part of your portrait "
                        "around the face, JPEG, so the avatar can be shown inside it: --frame). Without it the "
                        "frame is made from the generator's picture of the avatar")
    e.add_argument("--identity-metric", choices=["auto", "on", "off"], default="auto",
                   help="dlib's face models (122 MB, downloaded once): auto (default) uses them for the tuning's "
                        "identity term, which keeps the tuned avatar looking like this person (dlib distance to the "
                        "photo ~0.21 -> ~0.07), and measures the identity distance of the result; with --no-tune "
                        "only if already cached. on: always; off: neither (tuning without the identity term)")
    add_common(e)


class _Progress:
    """A tqdm bar per phase with the current LPIPS as postfix."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.phase = None

    def __call__(self, phase: str, step: int, steps: int, lpips: float) -> None:
        from tqdm import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=steps, desc=phase, unit="step", disable=not self.enabled, leave=True,
                            file=sys.stderr)
        self.bar.update(step - self.bar.n)
        if step % 10 == 0 or step == steps:
            self.bar.set_postfix(lpips=f"{lpips:.3f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _settings(args: argparse.Namespace):
    import dataclasses

    from live.inversion import QUALITY

    base = QUALITY[args.quality]
    if args.steps is None:
        return None
    if args.steps < 2:
        raise ValueError(f"--steps must be at least 2, got {args.steps}")
    scale = args.steps / base.steps
    steps_w = max(1, round(base.steps_w * scale))
    steps_full = round(base.steps_full * scale)
    return dataclasses.replace(base, steps_w=steps_w, steps_full=steps_full,
                               steps_plus=max(0, args.steps - steps_w - steps_full))


def enroll_portrait(portrait: Path, store, quality: str = "fast", tune: bool = True, settings=None,
                    cache: bool = True, identity_metric: str = "auto"):
    """Enroll with a progress bar and a notice of how long it takes."""
    from live.enroll import Enroller, read_portrait

    read_portrait(portrait)  # bad paths and non-images fail here, before any model loads
    enroller = Enroller(store, cache=cache, identity_metric=identity_metric)
    if settings is None and cache:
        hit = enroller.cached(portrait, quality, tune)
        if hit is not None:
            log.info("%s: using the identity enrolled before (cached)", portrait.name)
            return hit, enroller
    est = EST_SECONDS[quality] + (TUNE_EST_S[quality] if tune else 0)
    log.warning("enrolling %s (quality %s%s): %d-%d s on 2 CPU cores (the shorter with AVX-512 bf16); Ctrl-C "
                "cancels and writes nothing", portrait.name, quality, ", tuned" if tune else "", est,
                round(est * SLOW_CPU_FACTOR, -1))
    bar = _Progress(sys.stderr.isatty())
    try:
        identity = enroller.enroll(portrait, quality, tune, settings=settings, progress=bar)
    finally:
        bar.close()
    return identity, enroller


def cmd_enroll(args: argparse.Namespace, store) -> int:
    from live.identity_file import SUFFIX, save_identity
    from live.stages.file import guard_outputs

    out = args.output or args.portrait.with_suffix(SUFFIX)
    if out.suffix != SUFFIX:
        log.warning("%s does not end in %s; writing it anyway", out, SUFFIX)
    guard_outputs([out], [args.portrait], args.overwrite)
    identity, _ = enroll_portrait(args.portrait, store, args.quality, args.tune, _settings(args),
                                  cache=not args.no_cache, identity_metric=args.identity_metric)
    if args.no_photo:
        identity.photo = identity.photo_quad = None
    save_identity(identity, out)
    f = identity.fidelity
    dist, dist256 = f.get("identity_distance"), f.get("identity_distance_256")
    measured = "not measured (--identity-metric on)" if dist is None else f"{dist:.3f}"
    print(f"wrote {out} in {f.get('seconds', 0):.0f} s. Likeness to the aligned photo: LPIPS {f['lpips_vgg']:.3f}, "
          f"identity distance {measured} (--size 512/1024); at --size 256: LPIPS {f['lpips_vgg_256']:.3f}"
          + ("" if dist256 is None else f", identity distance {dist256:.3f}"))
    if dist is not None and dist >= 0.6:
        log.warning("the avatar does not look like the same person by dlib's rule (distance %.2f >= 0.6): "
                    "try --quality best, or a sharper, more frontal photo", dist)
    return 0


def resolve_identity(spec: str, store) -> tuple[int, Path | None]:
    """(seed, identity file) for --identity: seed:N, NAME.identity, or a portrait (enrolled, cached)."""
    from live.identity_file import SUFFIX

    text = spec.strip()
    if text.startswith("seed:"):
        value = text[5:]
        if not value.isdigit():
            raise ValueError(f"--identity seed:N wants a non-negative integer, got {spec!r}")
        return int(value), None
    path = Path(text).expanduser()
    if not path.exists():
        raise ValueError(f"identity {spec!r} not found: give seed:N, an identity file or a portrait")
    if path.suffix == SUFFIX or _is_safetensors(path):
        return 0, path
    identity, enroller = enroll_portrait(path, store)
    cached = enroller.cache_path(identity.meta["source_sha256"], "fast", True)
    return 0, cached


def _is_safetensors(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"
