"""The call-ready frame: the avatar pasted back into its own photo, at a webcam's size, moving in the picture.

Made once per identity and frame size (`make_scene`): the photo cropped and scaled around the face to the frame
(upright, the way a webcam sees a person), extended by a blur where the photo does not reach; the paste mask
(the avatar's face oval from its resting mesh, grown and feathered) and a colour correction that makes the
avatar's tones meet the photo's at the mask's edge. Per frame (`compose`): the avatar crop warped into the frame
by the crop's transform and the head's move, blended over the still background through the mask at rest and
the mask where the head now is; a moving head carries the photo's hair and surroundings along by a smooth
displacement field that fades out around it. With the head at rest only pixels under the mask change: the rest of
the frame is the photo's.

A generated identity's "photo" is the generator's own 1024² picture at rest, so it gets the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from live import mesh

FRAME_SIZES = {"1280x720": (1280, 720), "640x480": (640, 480), "1920x1080": (1920, 1080), "960x540": (960, 540)}
FRAMING = 1.0  # the FFHQ crop's side as a share of the frame's height: the face ~45% of the height, as on a webcam
FACE_MARGIN = 0.04  # the face's box keeps this share of the frame's height from the frame's edges
HEAD_GROW = 1.5  # the part of the photo a moving head carries along: the face oval grown by this (hair, ears)
HEAD_FEATHER = 0.08  # ... fading out over this Gaussian sigma (share of the crop side): the background stretches there
HEAD_STEP_PX = 0.75  # the head moves in the frame in steps of at least this (frame pixels): a still driver's jitter
# below it keeps the moved background (the frame's costly step) from the frame before
FIELD_STEP = 8  # the head's displacement field is computed every this many frame pixels and interpolated
MASK_GROW = 1.12  # the face oval grown by this about its centre before feathering: forehead, jaw line, ears' edge
FEATHER = 0.06  # the mask's soft edge: Gaussian sigma as a share of the crop side
MASK_FLOOR = 1.0 / 255  # mask values below this are 0: outside the mask the frame is the photo's pixels exactly
COLOUR_SIGMA = 0.08  # the colour correction's smoothness: Gaussian sigma as a share of the crop side
COLOUR_MAX = 40  # the correction never moves a channel by more than this (of 255)
EXTEND_BLUR = 0.035  # the blurred extension's Gaussian sigma as a share of the frame's height
EXTEND_FADE = 0.03  # the photo's edge fades into the blurred extension over this share of the frame's height


def parse_frame(text: str) -> tuple[int, int] | None:
    """'avatar' -> None (the generator's square), 'WxH' -> (W, H); ValueError with the choices otherwise."""
    text = str(text).strip().lower()
    if text == "avatar":
        return None
    try:
        w, h = (int(v) for v in text.split("x"))
    except ValueError:
        raise ValueError(f"frame size {text!r}: give WIDTHxHEIGHT such as 1280x720 or 640x480, or 'avatar' for the "
                         "generator's square") from None
    if not (160 <= w <= 3840 and 120 <= h <= 2160) or w % 2 or h % 2:
        raise ValueError(f"frame size {w}x{h}: width 160..3840 and height 120..2160, both even (video encoders "
                         "need even sides); webcams send 1280x720 or 640x480")
    return w, h


@dataclass(frozen=True)
class Scene:
    """What every frame of one identity at one frame size is composed from."""

    background: np.ndarray  # [H,W,3] uint8 RGB: the photo cropped and scaled to the frame, extended beyond it
    crop_to_frame: np.ndarray  # [2,3] float64: avatar crop pixel (side `size`) -> frame pixel, head at rest
    mask: np.ndarray  # [S,S] float32 in [0,1]: the paste mask in crop pixels (1 on the face)
    alpha: np.ndarray  # [S,S] uint8: the mask in 255ths, what compose() blends with
    rest_mask: np.ndarray  # [H,W] float32: the paste mask with the head at rest (what measures look at)
    colour: np.ndarray  # [S,S,3] int16: added to each avatar crop so its tones meet the photo's at the seam
    face_centre: np.ndarray  # [2] float64 frame pixels: what the head's scale is about
    iod: float  # the avatar's inter-ocular distance in frame pixels (the unit of the head's move)
    mask_box: np.ndarray  # [4,2] float64 crop pixels: corners of the mask's non-zero box
    head_box: tuple[int, int, int, int]  # x0, y0, x1, y1 frame pixels: where a moving head moves the photo
    head_weight: np.ndarray  # [h/FIELD_STEP, w/FIELD_STEP] float32 in [0,1]: how much of the head's move each
    # FIELD_STEP cell of head_box takes (1 on the head, 0 at the box's edge)
    head_grid: np.ndarray  # [2,h/FIELD_STEP,w/FIELD_STEP] float32: the cells' frame coordinates (x, y)
    head_rgba: np.ndarray  # [h,w,4] uint8 the background in head_box, with a fourth channel: OpenCV remaps four
    # channels about twice as fast as three

    @property
    def size(self) -> tuple[int, int]:
        return self.background.shape[1], self.background.shape[0]


def quad_side(quad: np.ndarray) -> float:
    return float(np.hypot(*(quad[3] - quad[0])))


def crop_matrix(quad: np.ndarray, side: int) -> np.ndarray:
    """[2,3] photo pixel -> pixel of the FFHQ crop of side `side` (the `ffhq_align` transform)."""
    dst = np.array([[0, 0], [0, side], [side, side]], np.float32)
    return cv2.getAffineTransform(quad[:3].astype(np.float32), dst).astype(np.float64)


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """[2,3] affine `outer` after `inner`."""
    return (np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]]))[:2]


def frame_window(photo_shape: tuple[int, ...], quad: np.ndarray, face_box: np.ndarray,
                 size: tuple[int, int]) -> np.ndarray:
    """[2,3] photo pixel -> frame pixel: upright, the FFHQ crop's side FRAMING of the frame's height, the face
    centred and then the window shifted to show as much photo as it can while the face's box ([2,2] photo pixels:
    min, max) stays inside the frame."""
    w, h = size
    scale = FRAMING * h / quad_side(quad)
    centre = quad.mean(0)
    offset = np.array([w / 2, h / 2]) - scale * centre  # frame = scale * photo + offset
    photo_wh = np.array([photo_shape[1], photo_shape[0]], np.float64) * scale
    frame_wh = np.array([w, h], np.float64)
    box = face_box * scale + offset
    margin = FACE_MARGIN * h
    for axis in (0, 1):
        # The photo's window [−offset, −offset + frame] inside [0, photo]: shift towards the photo where it is short.
        lo, hi = -offset[axis], -offset[axis] + frame_wh[axis]
        if photo_wh[axis] >= frame_wh[axis]:
            shift = max(0.0, -lo) - max(0.0, hi - photo_wh[axis])
        else:  # the photo is shorter than the frame on this axis: centre it
            shift = photo_wh[axis] / 2 - (lo + hi) / 2
        # ... but never so far that the face's box leaves the frame (where it fits at all).
        least, most = box[1, axis] + margin - frame_wh[axis], box[0, axis] - margin
        shift = float(np.clip(shift, least, most)) if least <= most else 0.0
        offset[axis] -= shift
    return np.array([[scale, 0, offset[0]], [0, scale, offset[1]]], np.float64)


def extend(photo: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The photo in the frame ([H,W,3] uint8) and the [2,3] transform actually used: scaled once (area averaging
    when shrinking), placed at whole pixels, and beyond its edges the photo's edge drawn out and blurred, fading in
    over EXTEND_FADE of the height, so a tight portrait fills a wide frame without bars (a reflection would mirror the
    face into the sides)."""
    w, h = size
    scale = matrix[0, 0]
    rw, rh = max(1, round(photo.shape[1] * scale)), max(1, round(photo.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(photo, (rw, rh), interpolation=interp)
    ox, oy = round(matrix[0, 2]), round(matrix[1, 2])
    used = np.array([[rw / photo.shape[1], 0, ox], [0, rh / photo.shape[0], oy]], np.float64)
    # Pad the scaled photo to cover the frame, by reflection, then cut the frame out of it.
    left, top = max(0, ox), max(0, oy)
    right, bottom = max(0, w - (ox + rw)), max(0, h - (oy + rh))
    padded = cv2.copyMakeBorder(scaled, top, bottom, left, right, cv2.BORDER_REPLICATE)
    x0, y0 = left - ox, top - oy
    sharp = np.ascontiguousarray(padded[y0:y0 + h, x0:x0 + w])
    inside = np.zeros((h, w), np.uint8)
    inside[max(0, oy):min(h, oy + rh), max(0, ox):min(w, ox + rw)] = 1
    if inside.all():
        return sharp, used
    blurred = cv2.GaussianBlur(sharp, (0, 0), EXTEND_BLUR * h)
    distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)  # 0 inside the photo
    fade = np.clip(distance / max(1.0, EXTEND_FADE * h), 0, 1)[..., None]
    out = sharp * (1 - fade) + blurred * fade
    return np.where(inside[..., None] > 0, sharp, np.round(out).astype(np.uint8)), used


def paste_mask(points: np.ndarray, side: int, grow: float = MASK_GROW, feather: float = FEATHER) -> np.ndarray:
    """[S,S] float32 in [0,1]: the face oval of `points` ([478,2+] crop pixels) grown by `grow`, feathered by
    `feather` of the side, zero below MASK_FLOOR."""
    oval = points[list(mesh.FACE_OVAL), :2]
    centre = oval.mean(0)
    grown = (oval - centre) * grow + centre
    mask = np.zeros((side, side), np.float32)
    cv2.fillPoly(mask, [np.round(grown * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    return floored(cv2.GaussianBlur(mask, (0, 0), feather * side))


def floored(mask: np.ndarray) -> np.ndarray:
    """`mask` with the values below MASK_FLOOR set to 0 (outside it the frame keeps the photo's pixels exactly)."""
    return cv2.threshold(mask, MASK_FLOOR, 0, cv2.THRESH_TOZERO)[1]


def crop_alpha(scene: Scene, roll_deg: float) -> np.ndarray:
    """[S,S] uint8 the paste mask turned with the avatar by `roll_deg` (the synthesis stage's roll)."""
    from live.image_steps import MIN_ROLL_DEG, roll_matrix

    if abs(roll_deg) < MIN_ROLL_DEG:
        return scene.alpha
    side = scene.alpha.shape[0]
    return cv2.warpAffine(scene.alpha, roll_matrix(side, roll_deg), (side, side), flags=cv2.INTER_LINEAR,
                          borderValue=0)


def frame_alpha(alpha: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H,W] uint8 a crop's alpha laid on the frame by `matrix` (crop -> frame), as compose() lays it."""
    return cv2.warpAffine(alpha, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)


def colour_field(avatar: np.ndarray, photo_crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[S,S,3] int16 a smooth correction that, added to the avatar, gives the photo's tones along the mask's edge
    (normalised convolution of the difference over the band where the mask is between 0 and 1)."""
    side = mask.shape[0]
    band = (4 * mask * (1 - mask))[..., None]  # peaks at the seam
    diff = photo_crop.astype(np.float32) - avatar.astype(np.float32)
    sigma = COLOUR_SIGMA * side
    num = cv2.GaussianBlur(diff * band, (0, 0), sigma)
    den = cv2.GaussianBlur(band[..., 0], (0, 0), sigma)[..., None]
    field = num / np.maximum(den, 1e-3)
    weight = np.clip(den / max(float(den.max()), 1e-6) * 4, 0, 1)  # no band nearby (crop corners): no correction
    return np.clip(np.round(field * weight), -COLOUR_MAX, COLOUR_MAX).astype(np.int16)


def make_scene(photo: np.ndarray, quad: np.ndarray, avatar_rest: np.ndarray, rest_points: np.ndarray,
               size: tuple[int, int]) -> Scene:
    """photo: [h,w,3] uint8 RGB; quad: [4,2] the FFHQ crop's corners in photo pixels (live.align.ffhq_quad);
    avatar_rest: [S,S,3] uint8 the avatar at rest as the synthesis renders it; rest_points: [478,2+] its face mesh
    in crop pixels; size: (W, H) of the frame."""
    side = avatar_rest.shape[0]
    photo_to_crop = crop_matrix(quad, side)
    crop_to_photo = cv2.invertAffineTransform(photo_to_crop)
    box = _box(corners(rest_points[:, :2].min(0), rest_points[:, :2].max(0)), crop_to_photo)  # the face, photo px
    background, photo_to_frame = extend(photo, frame_window(photo.shape, quad, box, size), size)
    crop_to_frame = compose_affine(photo_to_frame, crop_to_photo)
    scale = float(np.sqrt(abs(np.linalg.det(crop_to_frame[:, :2]))))  # crop pixel -> frame pixels
    mask = paste_mask(rest_points, side)
    photo_crop = cv2.warpAffine(photo, photo_to_crop, (side, side), flags=cv2.INTER_AREA
                                if quad_side(quad) > side else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    alpha = np.round(mask * 255).astype(np.uint8)  # 0 exactly where the floored mask is
    ys, xs = np.nonzero(alpha)
    eyes = rest_points[list(mesh.EYES), :2].mean(0)
    mouth = rest_points[list(mesh.MOUTH), :2].mean(0)
    centre = crop_to_frame[:, :2] @ ((eyes + mouth) / 2) + crop_to_frame[:, 2]
    oval = rest_points[list(mesh.FACE_OVAL), :2] @ crop_to_frame[:, :2].T + crop_to_frame[:, 2]
    head = head_field(oval, size, HEAD_FEATHER * side * scale)
    x0, y0, x1, y1 = head[0]
    head_rgba = cv2.cvtColor(np.ascontiguousarray(background[y0:y1, x0:x1]), cv2.COLOR_RGB2RGBA)
    rest_mask = frame_alpha(alpha, crop_to_frame, size).astype(np.float32) / 255
    # The mask's box grown by a pixel: a turned mask is resampled once more and may reach one pixel further.
    return Scene(background, crop_to_frame, mask, alpha, rest_mask,
                 colour_field(avatar_rest, photo_crop, mask), centre, mesh.interocular(rest_points) * scale,
                 corners([xs.min() - 1, ys.min() - 1], [xs.max() + 2, ys.max() + 2]), *head, head_rgba)


def corners(lo, hi) -> np.ndarray:
    """[4,2] float64 the corners of the box from `lo` (x, y) to `hi`."""
    return np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]], [hi[0], lo[1]]], np.float64)


def head_field(oval: np.ndarray, size: tuple[int, int], feather_px: float) -> tuple:
    """(head_box, head_weight, head_grid) of Scene: the face oval (frame pixels) grown by HEAD_GROW
    and feathered by `feather_px`, drawn directly at the field's resolution (FIELD_STEP pixels a cell)."""
    step = FIELD_STEP
    w, h = size
    cw, ch = -(-w // step), -(-h // step)
    centre = oval.mean(0)
    grown = ((oval - centre) * HEAD_GROW + centre - (step - 1) / 2) / step  # cell i's centre: pixel i*step+half
    cells = np.zeros((ch, cw), np.float32)
    cv2.fillPoly(cells, [np.round(grown * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    cells = floored(cv2.GaussianBlur(cells, (0, 0), feather_px / step))
    cells[0, :] = cells[-1, :] = cells[:, 0] = cells[:, -1] = 0  # the frame's edge never moves
    ys, xs = np.nonzero(cells)
    if len(xs) == 0:
        return (0, 0, 0, 0), np.zeros((0, 0), np.float32), np.zeros((2, 0, 0), np.float32)
    c0, r0, c1, r1 = xs.min() - 1, ys.min() - 1, xs.max() + 2, ys.max() + 2  # a zero cell around the field
    cells = cells[r0:r1, c0:c1]
    x0, y0 = c0 * step, r0 * step
    x1, y1 = min(w, c1 * step), min(h, r1 * step)
    half = (step - 1) / 2
    gx, gy = np.meshgrid(x0 + np.arange(cells.shape[1]) * step + half, y0 + np.arange(cells.shape[0]) * step + half)
    return (int(x0), int(y0), int(x1), int(y1)), cells, np.stack([gx, gy]).astype(np.float32)


def moved_head(scene: Scene, move: np.ndarray | None) -> np.ndarray | None:
    """[h,w,4] uint8 the background's head box (Scene.head_box) with the photo's head (and what is around it, fading
    out) moved by `move` ([2,3] frame -> frame); None at rest (move None, or no head box). A smooth displacement
    field, so no part of the photo is doubled: the one costly step of a frame (a remap of the head's box), which the
    compose stage reuses while the head stays within HEAD_STEP_PX."""
    x0, y0, x1, y1 = scene.head_box
    if move is None or x1 <= x0 or y1 <= y0:
        return None
    back = cv2.invertAffineTransform(move).tolist()  # where each moved pixel comes from (floats: float32 maths)
    gx, gy = scene.head_grid
    weight = scene.head_weight
    cells = np.empty(weight.shape + (2,), np.float32)  # one two-channel map: one resize, one interleaved read
    cells[..., 0] = weight * ((back[0][0] - 1) * gx + back[0][1] * gy + back[0][2])
    cells[..., 1] = weight * (back[1][0] * gx + (back[1][1] - 1) * gy + back[1][2])
    full = (weight.shape[1] * FIELD_STEP, weight.shape[0] * FIELD_STEP)  # the cells cover the box (the last may be cut)
    maps = cv2.resize(cells, full, interpolation=cv2.INTER_LINEAR)
    if full != (x1 - x0, y1 - y0):
        maps = np.ascontiguousarray(maps[:y1 - y0, :x1 - x0])
    # Relative maps (each pixel's source is itself plus the map): no full-size coordinate arrays to add.
    return cv2.remap(scene.head_rgba, maps, None, cv2.INTER_LINEAR | cv2.WARP_RELATIVE_MAP,
                     borderMode=cv2.BORDER_REPLICATE)


def frame_background(scene: Scene, head: np.ndarray | None) -> np.ndarray:
    """[H,W,3] uint8 a new frame holding the scene's background with `head` (moved_head; None: at rest) in its
    head box: each pixel written once (the head box is most of a 16:9 frame), the head straight from RGBA."""
    background = scene.background
    if head is None:
        return background.copy()
    x0, y0, x1, y1 = scene.head_box
    out = np.empty_like(background)
    out[:y0], out[y1:] = background[:y0], background[y1:]
    out[y0:y1, :x0], out[y0:y1, x1:] = background[y0:y1, :x0], background[y0:y1, x1:]
    cv2.cvtColor(head, cv2.COLOR_RGBA2RGB, dst=out[y0:y1, x0:x1])
    return out


def move_distance(scene: Scene, a: np.ndarray | None, b: np.ndarray | None) -> float:
    """How far apart two head moves put the face's box (the largest corner distance, frame pixels)."""
    box = corners(scene.head_box[:2], scene.head_box[2:])
    rest = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    pa = box @ (rest if a is None else a)[:, :2].T + (rest if a is None else a)[:, 2]
    pb = box @ (rest if b is None else b)[:, :2].T + (rest if b is None else b)[:, 2]
    return float(np.linalg.norm(pa - pb, axis=1).max())


def head_move(scene: Scene, dx: float, dy: float, scale: float) -> np.ndarray:
    """[2,3] frame pixel -> frame pixel: the head moved by (dx, dy) inter-ocular distances and scaled by `scale`
    about the face's centre."""
    c = scene.face_centre
    return np.array([[scale, 0, (1 - scale) * c[0] + dx * scene.iod],
                     [0, scale, (1 - scale) * c[1] + dy * scene.iod]], np.float64)


def _box(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """[2,2] (min, max) of `points` [N,2] under `matrix`."""
    moved = points @ matrix[:, :2].T + matrix[:, 2]
    return np.array([moved.min(0), moved.max(0)])


def mask_matrices(scene: Scene, move: np.ndarray | None, roll_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """([2,3] avatar crop -> frame, [2,3] paste mask -> frame) for a head `move` and the avatar's roll."""
    from live.image_steps import MIN_ROLL_DEG, roll_matrix

    side = scene.mask.shape[0]
    image_matrix = scene.crop_to_frame if move is None else compose_affine(move, scene.crop_to_frame)
    mask_matrix = image_matrix if abs(roll_deg) < MIN_ROLL_DEG \
        else compose_affine(image_matrix, roll_matrix(side, roll_deg))
    return image_matrix, mask_matrix


def pasted_mask(scene: Scene, move: np.ndarray | None = None, roll_deg: float = 0.0) -> np.ndarray:
    """[H,W] float32 the paste mask as compose() lays it on the frame for this move and roll (what measures of the
    frame take as "outside the mask": there the frame is the background's pixels exactly)."""
    image_matrix = mask_matrices(scene, move, roll_deg)[0]
    return frame_alpha(crop_alpha(scene, roll_deg), image_matrix, scene.size).astype(np.float32) / 255


def compose(scene: Scene, avatar: np.ndarray, move: np.ndarray | None = None, roll_deg: float = 0.0,
            head: np.ndarray | None = None, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """[H,W,3] uint8 a new frame: `avatar` ([S,S,3] uint8, already turned `roll_deg` as the synthesis stage turns it)
    pasted into the scene, moved by `move` ([2,3] frame -> frame, head_move; None: at rest); head: the head box
    moved by that same move (moved_head), when the caller kept it."""
    side = scene.mask.shape[0]
    if avatar.shape != (side, side, 3):
        raise ValueError(f"the avatar is {list(avatar.shape)}; this scene was made for [{side},{side},3]")
    image_matrix, mask_matrix = mask_matrices(scene, move, roll_deg)
    w, h = scene.size
    box = _box(scene.mask_box, mask_matrix)
    x0, y0 = np.clip(np.floor(box[0]).astype(int), 0, [w, h])
    x1, y1 = np.clip(np.ceil(box[1]).astype(int) + 1, 0, [w, h])
    out = frame_background(scene, moved_head(scene, move) if head is None and move is not None else head)
    if x1 <= x0 or y1 <= y0:
        return out
    # The avatar, premultiplied by its alpha, warped in one four-channel pass (outside the crop: all zero); then
    # frame = pasted + background * (255 - alpha) / 255 in 8-bit arithmetic. Where alpha is 0 that is the background
    # exactly (a premultiplied channel never exceeds its alpha, so it rounds to 0 there too); 2x faster than a float
    # mask and a float blend (benchmarks/FRAME.md).
    corrected = cv2.add(avatar, scene.colour, dtype=cv2.CV_8U) if scene.colour.any() else avatar
    alpha = crop_alpha(scene, roll_deg)
    rgba = cv2.multiply(cv2.cvtColor(corrected, cv2.COLOR_RGB2RGBA), cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGBA),
                        scale=1 / 255)
    rgba[..., 3] = alpha
    shift = np.array([[0, 0, -x0], [0, 0, -y0]], np.float64)
    pasted = cv2.warpAffine(rgba, image_matrix + shift, (x1 - x0, y1 - y0), flags=interpolation,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    keep = cv2.cvtColor(cv2.bitwise_not(np.ascontiguousarray(pasted[..., 3])), cv2.COLOR_GRAY2RGB)
    region = out[y0:y1, x0:x1]  # blended in place: no copies of the region
    cv2.multiply(region, keep, dst=region, scale=1 / 255)
    cv2.add(region, cv2.cvtColor(pasted, cv2.COLOR_RGBA2RGB), dst=region)
    return out
