"""Tracking on real faces that packages ship. MediaPipe runs in subprocesses (see conftest.run_py)."""

from conftest import run_py

PRELUDE = """
import json, logging, numpy as np, cv2
from live.samples import astronaut, grace_hopper
from live.frames import Frame
from live.stages.tracking import TrackingStage
MODEL = {model!r}

def track(image, smoothing=1.0, repeat=1, num_faces=2):
    stage = TrackingStage(MODEL, smoothing=smoothing, num_faces=num_faces)
    stage.start()
    try:
        for i in range(repeat):
            out = stage.process(Frame(seq=i, t_capture_ns=i, t_media_s=i / 30, image=image))
    finally:
        stage.close()
    return out.face
"""


def test_astronaut_smiles_and_smoothing_converges_to_raw(landmarker_path):
    r = run_py(PRELUDE.format(model=str(landmarker_path)) + """
img = astronaut()
raw = track(img, smoothing=0)
smooth = track(img, smoothing=1.0, repeat=15)
print(json.dumps({"lm": list(raw.landmarks.shape), "bs": list(raw.blendshapes.shape),
                  "smile": [raw.blendshape("mouthSmileLeft"), raw.blendshape("mouthSmileRight")],
                  "pitch_raw": raw.pitch, "pitch_smooth": smooth.pitch, "yaw": raw.yaw, "roll": raw.roll,
                  "num": raw.num_faces}))
""")
    assert r["lm"] == [478, 3] and r["bs"] == [52]
    assert min(r["smile"]) > 0.8
    assert abs(r["pitch_smooth"] - r["pitch_raw"]) < 2.0
    assert r["num"] == 1


def test_grace_hopper_pose_signs_and_no_face(landmarker_path):
    r = run_py(PRELUDE.format(model=str(landmarker_path)) + """
from skimage.data import coffee
img = grace_hopper()
a = track(img, smoothing=0)
b = track(np.ascontiguousarray(img[:, ::-1]), smoothing=0)
h, w = img.shape[:2]
rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)
c = track(rot, smoothing=0)  # +15 degrees = counter-clockwise on screen
none = track(np.ascontiguousarray(coffee()), smoothing=0)
blank = track(np.full((300, 300, 3), 127, np.uint8), smoothing=0)
print(json.dumps({"lm": list(a.landmarks.shape), "bs": list(a.blendshapes.shape),
                  "yaw": [a.yaw, b.yaw], "roll": [a.roll, b.roll, c.roll], "none": [none is None, blank is None]}))
""")
    assert r["lm"] == [478, 3] and r["bs"] == [52]
    yaw, yaw_mirrored = r["yaw"]
    roll, roll_mirrored, roll_rotated = r["roll"]
    assert abs(yaw + yaw_mirrored) < 3.0 and abs(roll + roll_mirrored) < 2.0  # a mirror flips yaw and roll
    assert 11.0 < roll_rotated - roll < 19.0
    assert r["none"] == [True, True]


def test_two_faces_tracks_the_largest_and_warns_once(landmarker_path):
    r = run_py(PRELUDE.format(model=str(landmarker_path)) + """
import io
# The short-range face detector wants faces that fill a fair part of the frame: 512 px and 256 px here.
canvas = np.full((768, 768, 3), 90, np.uint8)
canvas[:512, :512] = astronaut()
canvas[400:656, 500:756] = cv2.resize(cv2.resize(grace_hopper(), (512, 600))[44:556], (256, 256))
stream = io.StringIO()
logging.basicConfig(stream=stream, level=logging.WARNING)
face = track(canvas, smoothing=0, repeat=3)
print(json.dumps({"num": face.num_faces, "x": float(face.landmarks[:, 0].mean()),
                  "warnings": stream.getvalue().count("faces in view")}))
""")
    assert r["num"] == 2
    assert r["x"] < 512 / 768  # the astronaut's side
    assert r["warnings"] == 1


def test_ffhq_alignment_puts_eyes_where_ffhq_has_them(landmarker_path):
    r = run_py(PRELUDE.format(model=str(landmarker_path)) + """
from live.align import ffhq_align, EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT
out = {}
for name, img in (("astronaut", astronaut()), ("hopper", grace_hopper())):
    face = track(img, smoothing=0)
    crop = ffhq_align(img, face.landmarks, size=256)
    again = track(crop.image, smoothing=0)
    lm = again.landmarks[:, :2]
    back = crop.inverse @ np.array([128.0, 128.0, 1.0])
    fwd = crop.matrix @ np.append(back, 1.0)
    out[name] = {"shape": list(crop.image.shape), "eye_l": lm[list(EYE_IMAGE_LEFT)].mean(0).tolist(),
                 "eye_r": lm[list(EYE_IMAGE_RIGHT)].mean(0).tolist(), "roll": again.roll,
                 "roundtrip": fwd.tolist()}
print(json.dumps(out))
""")
    for name, a in r.items():
        assert a["shape"] == [256, 256, 3], name
        (lx, ly), (rx, ry) = a["eye_l"], a["eye_r"]
        # FFHQ frame: eye line level, eyes about a quarter of the crop apart, centred, a bit above the middle.
        assert abs(ly - ry) < 0.02 and abs(a["roll"]) < 4.0, name
        assert 0.19 < rx - lx < 0.31, name
        assert abs((lx + rx) / 2 - 0.5) < 0.03, name
        assert 0.36 < (ly + ry) / 2 < 0.5, name
        assert a["roundtrip"] == [128.0, 128.0] or max(abs(v - 128.0) for v in a["roundtrip"]) < 1e-6


def test_fast_result_reader_matches_the_public_api(landmarker_path):
    r = run_py(PRELUDE.format(model=str(landmarker_path)) + """
from live.landmarker import FaceTracker
from live.samples import moving_clip
import tempfile, pathlib
clip = moving_clip(pathlib.Path(tempfile.mkdtemp()) / "c.avi", frames=12, size=320)
cap = cv2.VideoCapture(str(clip))
frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(12)]
fast, ref = FaceTracker(MODEL, fast=True), FaceTracker(MODEL, fast=False)
fast.open(); ref.open()
same, n = True, 0
for i, img in enumerate(frames + [np.zeros((64, 64, 3), np.uint8)]):
    a, b = fast.detect(img, i / 30), ref.detect(img, i / 30)
    n += len(a)
    same &= len(a) == len(b) and all(
        np.array_equal(x.landmarks, y.landmarks) and np.array_equal(x.blendshapes, y.blendshapes)
        and np.array_equal(x.matrix, y.matrix) for x, y in zip(a, b))
fast.close(); ref.close()
img_fast, img_ref = FaceTracker(MODEL, fast=True, video=False), FaceTracker(MODEL, fast=False, video=False)
img_fast.open(); img_ref.open()
a, b = img_fast.detect(frames[3], 0.0), img_ref.detect(frames[3], 0.0)
same_image = len(a) == len(b) == 1 and np.array_equal(a[0].landmarks, b[0].landmarks)
img_fast.close(); img_ref.close()
print(json.dumps({"fast_used": fast.fast and img_fast.fast, "same": bool(same), "faces": n,
                  "same_image_mode": bool(same_image)}))
""")
    assert r["fast_used"] and r["same"] and r["faces"] == 12 and r["same_image_mode"]
