"""The geometric channel's transfer: where the avatar's face points should be, from the driver's mesh motion.

1. The driver's motion: this frame's mesh carried onto the driver's neutral mesh by the similarity on points an
   expression hardly moves (live.mesh.STABLE), minus the neutral: head pose and distance removed, the face's own
   movement left, in the neutral's pixels.
2. Transfer (deformation transfer, kept simple): each region's motion (the mouth, each eye with its iris, each
   brow) is turned from the driver's neutral orientation into the avatar's and scaled by that region's size on the
   avatar over its size on the driver. The driver's shape never reaches the avatar: a still driver moves nothing,
   however wide their face, and a mouth twice the avatar's moves the avatar's mouth half as far.
3. Residual: what the rendered frame already shows (its own mesh carried onto the avatar's neutral the same way)
   is taken off, so the warp adds only what the latent did not draw; and the mouth opens exactly as far as the
   render's own (its inside and the jaw are the latent's to draw: a warp would only stretch or squash them).

Points are [478,3] pixels (live.mesh.to_pixels); motions [478,2].
"""

from __future__ import annotations

import numpy as np

from live import mesh

# (group, points, the two landmarks whose distance is the region's size)
REGIONS = (
    ("mouth", mesh.LIPS, (61, 291)),  # mouth corners
    ("eyes", mesh.RIGHT_EYE + mesh.RIGHT_IRIS, (33, 133)),  # eye corners
    ("eyes", mesh.LEFT_EYE + mesh.LEFT_IRIS, (362, 263)),
    ("brows", mesh.RIGHT_BROW, (46, 107)),  # brow ends
    ("brows", mesh.LEFT_BROW, (276, 336)),
)
GROUPS = tuple(dict.fromkeys(group for group, _, _ in REGIONS))  # mouth, eyes, brows
MOVED = tuple(sorted({i for _, idx, _ in REGIONS for i in idx}))


def motion(points: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """[478,2]: points' movement from `neutral` with head pose and scale removed, in the neutral's pixels."""
    return (mesh.align_to(points, neutral) - neutral)[:, :2]


def rotation_2d(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """[2,2]: the in-plane rotation of the similarity taking src's STABLE points onto dst's (x, y only)."""
    _, rot, _ = mesh.similarity(src[list(mesh.STABLE), :2], dst[list(mesh.STABLE), :2])
    return rot


def transfer(driver: np.ndarray, driver_neutral: np.ndarray, avatar_neutral: np.ndarray) -> np.ndarray:
    """[478,2]: the motion the avatar's points should show, in its neutral's pixels (zero outside MOVED)."""
    m = motion(driver, driver_neutral) @ rotation_2d(driver_neutral, avatar_neutral).T
    out = np.zeros((len(driver), 2))
    for _, idx, (a, b) in REGIONS:
        on_driver = np.linalg.norm(driver_neutral[a, :2] - driver_neutral[b, :2])
        on_avatar = np.linalg.norm(avatar_neutral[a, :2] - avatar_neutral[b, :2])
        out[list(idx)] = m[list(idx)] * (on_avatar / max(on_driver, 1e-6))
    return out


def keep_mouth_drawn(target: np.ndarray, shown: np.ndarray, avatar_neutral: np.ndarray) -> np.ndarray:
    """target [478,2] (motion in the avatar's neutral) with the lower lip moved so that the mouth opens as far as in
    `shown` (the render's own motion), no more and no less: the opening is the latent's (it draws the teeth and the
    jaw, which the warp would only stretch or squash); the lips' shape is the warp's."""
    excess = np.mean([(target[lo, 1] - target[up, 1]) - (shown[lo, 1] - shown[up, 1]) for up, lo in mesh.INNER_LIP_PAIRS])
    target = target.copy()
    target[list(mesh.LOWER_LIP), 1] -= excess
    return target


def keep_eyes_drawn(target: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """target [478,2] with each eye's lids moved so that the eye opens as far as in `shown`: lids closing over the
    eye are new content the latent draws (a warp would squash the iris instead of covering it); the eye's shape,
    position and gaze stay the warp's. The correction goes to the lid the driver moved: an upper lid coming down (a
    blink) is held up, a lower lid coming up (a squint) held down, so neither moves the whole eye."""
    target = target.copy()
    for pairs, upper, lower in ((mesh.RIGHT_LID_PAIRS, mesh.RIGHT_UPPER_LID, mesh.RIGHT_LOWER_LID),
                                (mesh.LEFT_LID_PAIRS, mesh.LEFT_UPPER_LID, mesh.LEFT_LOWER_LID)):
        du = np.mean([target[up, 1] - shown[up, 1] for up, _ in pairs])
        dl = np.mean([target[lo, 1] - shown[lo, 1] for _, lo in pairs])
        share = abs(du) / (abs(du) + abs(dl)) if abs(du) + abs(dl) > 1e-9 else 0.5  # the upper lid's
        target[list(upper), 1] += (dl - du) * share
        target[list(lower), 1] -= (dl - du) * (1 - share)
    return target


def limit_undo(move: np.ndarray, shown: np.ndarray, undo: float, min_px: float = 0.5) -> np.ndarray:
    """move [N,2] with the part of each point's move that takes back the latent's own motion `shown` [N,2] limited
    to `undo` of that motion (1: no limit; 0: the warp never pulls a point back along the way the latent moved it,
    it only adds). Points the latent moved less than `min_px` are left as they are."""
    if undo >= 1:
        return move
    norm2 = (shown ** 2).sum(1)
    along = (move * shown).sum(1) / np.maximum(norm2, 1e-12)  # move = along * shown + a part across it
    along = np.where(norm2 >= min_px ** 2, along, 0.0)
    return move + (np.maximum(along, -undo) - along)[:, None] * shown


def residual(target: np.ndarray, render: np.ndarray, avatar_neutral: np.ndarray,
             gains: dict[str, float] | None = None, undo: float = 1.0) -> np.ndarray:
    """[478,2]: how far each point of the rendered frame must move, in the render's pixels, to show `target` (a
    motion in the avatar's neutral); zero outside MOVED. gains: the share of each group's (GROUPS) move the warp
    makes (default 1; 0 leaves that group as the latent drew it); undo: the largest share of the latent's own motion
    of a point the warp may take back (limit_undo; 1: any). Where the latent and the driver disagree (a toothy mouth
    drawn wide for a driver's narrow one, brows the latent raised), pulling the drawn face all the way back squeezes
    what the latent drew: measured, half keeps the likeness best (benchmarks/QUALITY.md, 2026-12-07). The irises are
    exempt: the latent moves them with a head turn, and held to half of that the gaze came out half as far.
    """
    shown = motion(render, avatar_neutral)
    want = keep_eyes_drawn(keep_mouth_drawn(target, shown, avatar_neutral), shown)
    diff = np.zeros((len(render), 3))
    moved = list(MOVED)
    diff[moved, :2] = limit_undo((want - shown)[moved], shown[moved], undo)
    irises = list(mesh.RIGHT_IRIS + mesh.LEFT_IRIS)  # where the eyes look is the warp's whatever the latent drew
    diff[irises, :2] = (want - shown)[irises]
    if gains:
        for group, idx, _ in REGIONS:
            diff[list(idx), :2] *= gains.get(group, 1.0)
    s, rot, _ = mesh.similarity(avatar_neutral[list(mesh.STABLE)], render[list(mesh.STABLE)])
    return (s * diff @ rot.T)[:, :2]


def split_gaze(move: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """(move [478,2] with each iris carried by its eye, [(eye index in mesh.EYE_PARTS, shift [2])]): the part of an
    iris's move along its eye (corner to corner) beyond what the eye's own points move is the gaze, which a smooth
    warp cannot show (it would shear the iris against lids an iris radius away): live.warp.slide_eye slides it under
    the lids instead. The rest of the iris's move (up or down, with the lids that follow a vertical glance) stays
    the spline's. move: the render's points' moves in its pixels; points [478,2+] the render's points."""
    move = move.copy()
    slides = []
    for eye, (corners, upper, lower, iris) in enumerate(mesh.EYE_PARTS):
        axis = points[corners[1], :2] - points[corners[0], :2]
        axis = axis / max(float(np.linalg.norm(axis)), 1e-9)
        lids = list(corners + upper + lower)
        along = float((move[iris[0]] - move[lids].mean(0)) @ axis)
        if along != 0.0:
            move[list(iris)] -= along * axis
            slides.append((eye, along * axis))
    return move, slides
