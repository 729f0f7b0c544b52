"""The call-ready frame (live.compose, live.stages.compose): paste-back, the frame's window, the head's move."""

from __future__ import annotations

import numpy as np
import pytest

from live.align import ffhq_align, ffhq_quad
from live.compose import compose, frame_window, head_move, make_scene, parse_frame
from live.frames import Face
from live.stages.compose import driver_move


@pytest.fixture(scope="module")
def portrait(landmarker_path):
    """(photo [h,w,3], landmarks [478,3] normalised) of matplotlib's Grace Hopper: a real face and its mesh."""
    from live.landmarker import FaceTracker
    from live.samples import grace_hopper

    photo = grace_hopper()
    tracker = FaceTracker(landmarker_path, num_faces=1, max_side=1024, video=False)
    try:
        faces = tracker.detect(photo, 0.0)
    finally:
        tracker.close()
    assert faces, "MediaPipe found no face on grace_hopper.jpg"
    return photo, np.asarray(faces[0].landmarks)


def scene_of(photo, landmarks, size, side=256, tint=(0, 0, 0)):
    """A scene whose avatar is the photo's own aligned crop (tinted by `tint`: an avatar whose tones are off) with the
    crop's mesh; and that avatar."""
    h, w = photo.shape[:2]
    quad = ffhq_quad(landmarks[:, :2] * [w, h])
    aligned = ffhq_align(photo, landmarks, side)
    avatar = np.clip(aligned.image.astype(int) + tint, 0, 255).astype(np.uint8)
    points = landmarks[:, :2] * [w, h] @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    return make_scene(photo, quad, avatar, points, size), avatar


def test_paste_back_of_the_unmodified_crop_reproduces_the_photo(portrait):
    photo, landmarks = portrait
    # The frame's scale puts the crop at 256 px, its own size: what is left is two bilinear resamplings.
    scene, crop = scene_of(photo, landmarks, (456, 256))
    out = compose(scene, crop)
    inside = scene.rest_mask > 0.5
    diff = np.abs(out.astype(int) - scene.background.astype(int))[inside]
    assert inside.sum() > 10000
    assert diff.mean() < 3.0 and np.percentile(diff, 99) < 24, (diff.mean(), np.percentile(diff, 99))
    # ... and with the head at rest, everything outside the mask is the photo's pixels exactly.
    outside = scene.rest_mask == 0
    assert outside.mean() > 0.5
    assert np.array_equal(out[outside], scene.background[outside])


def test_a_720p_frame_keeps_the_photo_outside_the_mask_and_the_seam_soft(portrait):
    photo, landmarks = portrait
    scene, tinted = scene_of(photo, landmarks, (1280, 720), tint=(24, -20, 10))  # an avatar of other tones
    out = compose(scene, tinted)
    assert out.shape == (720, 1280, 3)
    outside = scene.rest_mask == 0
    assert np.array_equal(out[outside], scene.background[outside])
    # The colour correction takes the tint back where the avatar meets the photo.
    band = (scene.rest_mask > 0.05) & (scene.rest_mask < 0.6)
    off = np.abs(out[band].astype(float).mean(0) - scene.background[band].astype(float).mean(0))
    assert off.max() < 2, off  # measured 0.23 with the correction, 6.4 without


def test_a_turned_moved_paste_changes_only_what_its_mask_covers(portrait):
    """compose() blends in 8-bit premultiplied arithmetic: wherever pasted_mask() (what measures take as the mask for
    this move and roll) is 0 the frame is the background exactly, and where it is 1 the avatar's own (corrected)
    colours come through."""
    from live.compose import frame_background, moved_head, pasted_mask

    scene, avatar = scene_of(*portrait, (640, 360), tint=(30, -30, 0))
    move = head_move(scene, 0.6, -0.3, 1.1)
    head = moved_head(scene, move)
    background = frame_background(scene, head)
    out = compose(scene, avatar, move, 7.0, head)
    assert np.array_equal(out, compose(scene, avatar, move, 7.0))  # the head kept, or moved again: the same frame
    mask = pasted_mask(scene, move, 7.0)
    outside = mask == 0
    assert outside.mean() > 0.5 and (mask == 1).sum() > 500
    assert np.array_equal(out[outside], background[outside])
    inside = mask == 1
    assert np.abs(out[inside].astype(int) - background[inside]).mean() > 5  # the tinted avatar, not the photo


def test_the_frame_keeps_a_face_near_the_photo_edge_inside_and_extends_without_bars(portrait):
    photo, landmarks = portrait
    h, w = photo.shape[:2]
    quad = ffhq_quad(landmarks[:, :2] * [w, h])
    # Cut the photo so the face touches its left edge.
    left = int(landmarks[:, 0].min() * w) - 2
    cut = np.ascontiguousarray(photo[:, left:])
    box = np.array([landmarks[:, :2].min(0), landmarks[:, :2].max(0)]) * [w, h] - [left, 0]
    matrix = frame_window(cut.shape, quad - [left, 0], box, (1280, 720))
    in_frame = box @ matrix[:, :2].T + matrix[:, 2]
    assert (in_frame[0] >= 0).all() and in_frame[1, 0] <= 1280 and in_frame[1, 1] <= 720, in_frame
    lm = landmarks.copy()
    lm[:, 0] = (lm[:, 0] * w - left) / cut.shape[1]
    scene, _ = scene_of(cut, lm, (1280, 720))
    columns = scene.background.reshape(720, 1280, 3).mean(axis=(0, 2))
    assert columns.min() > 20, "a black bar where the photo does not reach"
    # The extension is a blur: far from the photo it has little detail.
    edge = scene.background[:, :40].astype(float)
    assert np.abs(np.diff(edge, axis=1)).mean() < 1.5


def test_a_driver_moving_right_moves_the_avatar_right(portrait):
    def face(x, z=-40.0):
        return Face(landmarks=np.zeros((478, 3), np.float32), blendshapes=np.zeros(52, np.float32), yaw=0.0,
                    pitch=0.0, roll=0.0, translation=(x, 0.0, z), matrix=np.eye(4, dtype=np.float32))

    dx, dy, scale = driver_move(face(3.0), face(0.0))
    assert dx == pytest.approx(3.0 / 9.3) and abs(dy) < 1e-9 and scale == pytest.approx(1.0)
    assert driver_move(face(0.0, -30.0), face(0.0))[2] > 1.2  # nearer the camera: larger

    scene, avatar = scene_of(*portrait, (640, 360))
    marked = avatar.copy()
    marked[110:150, 110:150] = (0, 255, 0)  # a patch on the face

    def patch_x(move):
        changed = np.abs(compose(scene, marked, move).astype(int) - compose(scene, avatar, move)).sum(axis=2) > 60
        return np.nonzero(changed)[1].mean()

    shift = patch_x(head_move(scene, dx, 0.0, 1.0)) - patch_x(None)
    assert shift == pytest.approx(dx * scene.iod, abs=1.0) and shift > 5


def test_frame_sizes_are_checked():
    assert parse_frame("avatar") is None
    assert parse_frame("1280x720") == (1280, 720)
    for bad in ("720p", "1281x720", "100000x20", "x"):
        with pytest.raises(ValueError, match="frame size"):
            parse_frame(bad)


def test_the_identity_file_keeps_the_photo_and_refuses_a_damaged_one(tmp_path, portrait):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from live.enroll import keep_photo
    from live.identity_file import (
        Identity,
        IdentityFileError,
        load_identity,
        save_identity,
    )

    photo, landmarks = portrait
    h, w = photo.shape[:2]
    kept, quad = keep_photo(photo, ffhq_quad(landmarks[:, :2] * [w, h]))
    identity = Identity(styles=torch.randn(1, 23, 512), crop=np.zeros((64, 64, 3), np.uint8), generator="g",
                        generator_sha256="a" * 64, photo=kept, photo_quad=quad)
    path = save_identity(identity, tmp_path / "me.identity")
    back = load_identity(path)
    assert back.photo.shape == kept.shape and np.abs(back.photo.astype(int) - kept).mean() < 2.0  # JPEG 95
    assert np.allclose(back.photo_quad, quad)
    tensors = load_file(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors["photo"] = torch.randint(0, 255, (500,), dtype=torch.uint8)  # not an image
    save_file(tensors, tmp_path / "bad.identity", metadata=meta)
    with pytest.raises(IdentityFileError, match="photo"):
        load_identity(tmp_path / "bad.identity")


def test_live_run_sends_a_frame_in_which_the_avatar_follows_the_driver_right(tmp_path, landmarker_path):
    """End to end through `live run --frame`: the video is the frame's size, and a driver sliding right in their
    picture slides the avatar right in the frame (real MediaPipe on both sides)."""
    import cv2
    from conftest import run_live

    from live.samples import grace_hopper

    face = cv2.resize(grace_hopper(), (180, 240))
    driver = tmp_path / "driver.avi"
    writer = cv2.VideoWriter(str(driver), cv2.VideoWriter_fourcc(*"MJPG"), 10, (480, 320))
    for t in range(16):
        canvas = np.full((320, 480, 3), 120, np.uint8)
        x = 100 + (0 if t < 4 else 12 * min(8, t - 4))  # still, then 96 px to the right
        canvas[40:280, x:x + 180] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "out.mp4"
    r = run_live("run", "--identity", "seed:7", "--backend", "torch", "--input", str(driver), "--frame", "640x360",
                 "-o", str(out), timeout=600)
    assert r.returncode == 0, r.stderr
    from live.landmarker import FaceTracker

    cap = cv2.VideoCapture(str(out))
    xs = []
    tracker = FaceTracker(landmarker_path, num_faces=1, max_side=1024, video=False)
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (360, 640, 3)
            faces = tracker.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), 0.0)
            xs.append(float(np.asarray(faces[0].landmarks)[:, 0].mean() * 640) if faces else None)
    finally:
        tracker.close()
    assert len(xs) == 16 and None not in xs
    assert xs[-1] - xs[0] > 40, xs  # the driver moved ~0.5 of their eye distance per 24 px: the avatar follows


def test_the_head_move_is_limited_held_on_freeze_and_eased_back_without_a_face(portrait):
    from live.controls import Controls
    from live.frames import Frame
    from live.stages.compose import MAX_MOVE_IOD, ComposeStage

    scene, avatar = scene_of(*portrait, (640, 360))
    controls = Controls()
    stage = ComposeStage(lambda: scene, controls, release_s=0.2)
    stage.start()

    def face(x):
        return Face(landmarks=np.zeros((478, 3), np.float32), blendshapes=np.zeros(52, np.float32), yaw=0.0,
                    pitch=0.0, roll=0.0, translation=(x, 0.0, -40.0), matrix=np.eye(4, dtype=np.float32))

    def frame(t, x):
        return Frame(seq=int(t * 10), t_capture_ns=0, t_media_s=t, image=np.zeros((8, 8, 3), np.uint8),
                     face=None if x is None else face(x), neutral=face(0.0), output=avatar)

    stage.process(frame(0.0, 50.0))  # far beyond what a webcam shows: limited
    assert stage._move[0] == pytest.approx(MAX_MOVE_IOD)
    controls.freeze = True
    stage.process(frame(0.1, -50.0))
    assert stage._move[0] == pytest.approx(MAX_MOVE_IOD)  # held
    controls.freeze = False
    stage.process(frame(0.2, None))
    stage.process(frame(1.2, None))  # 5 time constants without a face
    assert abs(stage._move[0]) < 0.01 * MAX_MOVE_IOD
    fixed = ComposeStage(lambda: scene, Controls(), fixed_head=True)
    fixed.start()
    out = fixed.process(frame(0.0, 50.0)).output
    assert np.array_equal(out, compose(scene, avatar))  # --fixed-head: the frame at rest
