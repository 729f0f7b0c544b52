"""Where a blendshape's error comes from: per identity and driving clip, from a `benchmarks/quality.py` JSON.

    python benchmarks/quality_breakdown.py benchmarks/results/quality-calibrated.json
    python benchmarks/quality_breakdown.py q01.json q23.json --signals mouthSmileLeft,eyeBlinkRight

quality.py pools each blendshape's error over every frame of every pair (identity x clip) and divides it by a
motionless avatar's. This splits that ratio, per identity, into the clips it comes from: for each clip the share of
the ratio its frames add (the measured error), next to what the range bound, the reach bound and what was asked add
there (an avatar showing the driver's change as far as MediaPipe's [0, 1] allows from its resting value; within its
expression's reach; exactly what the encoder asked), and the share of the driver's motion the clip holds. A clip
whose error is as large as its motion and whose range bound is the same size is one this face cannot show at all
from its resting expression (a face resting at smile 0.02 cannot un-smile); one whose error is larger than its
motion is one where the avatar moves a signal the driver holds still.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TARGETS = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight")
PARTS = ("ratio", "range_bound", "reach_bound", "asked")  # per-pair ratios quality.py writes


def breakdown(pairs: list[dict], signal: str) -> dict[str, dict]:
    """{identity: {"total": {part: pooled ratio}, "clips": {clip: {part: share of the pooled ratio, "motion": share
    of the driver's motion}}}} for one blendshape; a part is None where a pair lacks it."""
    out: dict[str, dict] = {}
    for seed in dict.fromkeys(p["seed"] for p in pairs):
        mine = [p for p in pairs if p["seed"] == seed and p["signals"][signal]["motionless"]]
        base = sum(p["signals"][signal]["motionless"] * p["measured"] for p in mine)
        if not base:
            continue
        clips = {}
        for p in mine:
            s = p["signals"][signal]
            weight = s["motionless"] * p["measured"] / base  # this pair's share of the identity's motionless error
            clips[p["clip"]] = {part: None if s.get(part) is None else s[part] * weight for part in PARTS}
            clips[p["clip"]]["motion"] = weight
        total = {part: None if any(c[part] is None for c in clips.values()) else sum(c[part] for c in clips.values())
                 for part in PARTS}
        out[seed] = {"total": total, "clips": clips}
    return out


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_breakdown(signal: str, table: dict[str, dict]) -> None:
    print(f"\n{signal}: share of the pooled error ratio per clip (measured | range bound | reach bound | asked; "
          "motion: the clip's share of the driver's motion)")
    for seed, t in table.items():
        tot = t["total"]
        print(f"  identity {seed}: ratio {_cell(tot['ratio'])} (range bound {_cell(tot['range_bound'])}, reach bound "
              f"{_cell(tot['reach_bound'])}, asked {_cell(tot['asked'])})")
        for clip, c in sorted(t["clips"].items(), key=lambda kv: -(kv[1]["ratio"] or 0)):
            print(f"    {clip:<6} {_cell(c['ratio'])} | {_cell(c['range_bound'])} | {_cell(c['reach_bound'])} | "
                  f"{_cell(c['asked'])}   motion {c['motion']:.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, help="JSON files written by benchmarks/quality.py --json")
    p.add_argument("--signals", default=",".join(TARGETS),
                   help=f"comma-separated blendshapes (default: {','.join(TARGETS)})")
    args = p.parse_args(argv)
    pairs = []
    for path in args.results:
        try:
            pairs += json.loads(path.read_text())["pairs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            p.error(f"{path} is not a benchmarks/quality.py JSON ({exc}): write one with "
                    "`python benchmarks/quality.py --json PATH`")
    signals = [s for s in args.signals.split(",") if s]
    known = set(pairs[0]["signals"]) if pairs else set()
    unknown = [s for s in signals if s not in known]
    if not pairs or unknown:
        p.error(f"no pairs in {', '.join(map(str, args.results))}" if not pairs else
                f"unknown signal(s) {', '.join(unknown)}: choose from {', '.join(sorted(known))}")
    for s in signals:
        print_breakdown(s, breakdown(pairs, s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
