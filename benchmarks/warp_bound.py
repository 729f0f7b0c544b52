"""The geometric channel with nothing held back: quality.py with the warp's likeness limits taken off.

    python benchmarks/warp_bound.py --identities 0,1,2,3 --warp --warp-undo 1 --no-warp-hold --json PATH

Every argument is quality.py's. Before it runs, this takes off what the live warp holds back for the likeness:
the mouth's and the eyes' opening are warped to the driver's too (transfer.keep_mouth_drawn / keep_eyes_drawn off),
no deadband, and the map on a 4x finer lattice (live.warp.GRID 128; measured: no difference). With `--warp-undo 1
--no-warp-hold` every face point goes where the driver's transferred motion puts it: what following the driver's
geometry all the way reads as, against the live warp's limits (benchmarks/QUALITY.md, 2026-12-07).
An experiment, not a setting: nothing in `live` runs this way.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def unbound() -> None:
    """Take the warp's likeness limits off, for this process."""
    import live.stages.warp
    import live.transfer
    import live.warp

    live.warp.GRID = 128
    live.transfer.keep_mouth_drawn = lambda target, shown, neutral: target
    live.transfer.keep_eyes_drawn = lambda target, shown: target
    live.stages.warp.DEADBAND_PX = 0.0


if __name__ == "__main__":
    import quality

    unbound()
    raise SystemExit(quality.main(sys.argv[1:]))
