"""Printing and plotting benchmarks/quality.py's results."""

from __future__ import annotations

import numpy as np
from face_measures import BLENDS, GROUPS, POSE


def print_table(result: dict) -> None:
    o = result["overall"]
    print("live reenactment quality (" + result["note"] + ")")
    print(f"identity distance: median {o['identity_median']}, worst frame {o['identity_worst_frame']} "
          "(dlib, < 0.6 = same person)")
    print("error / motionless avatar's error: 'pooled' over all frames of all pairs, 'mean' of the per-pair ratios "
          "(pairs where the driver hardly moves a signal give large ratios from tracker noise alone)")
    print("reach bound: the pooled ratio of an avatar showing exactly the driver's change within its expression's "
          "reach on this avatar (under it is the generator's and the identity budget's, not the encoder's)")
    print("range bound: that of an avatar showing the driver's change as far as MediaPipe's [0, 1] allows from its "
          "resting value (no avatar that keeps its resting face can do better)")
    print("asked: the pooled ratio of an avatar showing exactly what the encoder asked of it (within reach, after the "
          "identity governor); the ratio's excess over it is what the avatar did not show of what it was asked")
    print(f"{'signal':<17}{'ratio (pooled)':>15}{'ratio (mean)':>14}{'corr (pooled)':>15}{'gain (pooled)':>15}"
          f"{'range bound':>13}{'reach bound':>13}{'asked':>8}")
    for n in POSE + BLENDS:
        print(f"{n:<17}{o[n]['ratio_pooled']!s:>15}{o[n]['ratio_mean']!s:>14}{o[n]['corr_pooled']!s:>15}"
              f"{o[n]['gain_pooled']!s:>15}{o[n].get('range_bound_pooled', '')!s:>13}"
              f"{o[n].get('reach_bound_pooled', '')!s:>13}{o[n].get('asked_pooled', '')!s:>8}")
    print(f"jitter on the stillest second: {o['jitter_deg_mean']} deg/frame (avatar head angles)")
    print_whole_face(result["whole_face"])


def print_whole_face(w: dict) -> None:
    b, lm = w["blendshapes"], w["landmarks"]
    print(f"every blendshape that moves (driver's mean |change| > {b['moving_threshold']} on a clip): "
          "error / motionless error pooled, mean correlation")
    for group in ("all", *GROUPS):
        print(f"  {group:<12} ratio {b[group]['ratio']!s:>6}  corr {b[group]['corr']!s:>6}  "
              f"({b[group]['blendshapes']} blendshapes)")
    print("  per blendshape: " + ", ".join(f"{n} {r['ratio']}/{r['corr']}" for n, r in b["per_blendshape"].items()))
    print(f"landmark motion (pose removed, / inter-ocular), error / motionless: mouth+eyes {lm['all']}, "
          f"mouth {lm['mouth']}, eyes {lm['eyes']}")
    print(f"seam (mean |output - render| outside the face oval, 0-255): {w['seam']}")


def plot(path: str, name: str, seed: int, drv, out, dist, stride: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(drv))
    nan = np.full(9, np.nan)
    d = np.array([x if x is not None else nan for x in drv])
    o = np.array([x if x is not None else nan for x in out])
    fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    for ax, cols, title in ((axes[0], (0, 1), "head pose (deg, relative)"), (axes[1], (3,), "jawOpen"),
                            (axes[2], (6, 4), "mouthSmileLeft, eyeBlinkLeft")):
        for c in cols:
            label = (POSE + BLENDS)[c]
            ax.plot(t, d[:, c] - d[0, c], label=f"driver {label}")
            ax.plot(t, o[:, c] - o[0, c], "--", label=f"avatar {label}")
        ax.set_title(title)
        ax.legend(fontsize=7)
    axes[3].plot(np.arange(len(dist)) * stride, dist, "k.-")
    axes[3].axhline(0.6, color="r", lw=0.8)
    axes[3].set_title("identity distance to the neutral identity (dlib; red: same-person threshold)")
    axes[3].set_xlabel("frame")
    fig.suptitle(f"{name} driving seed {seed} (not CSIM/FID)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
