"""Optional: tracking over the real talking-head clips in ../shared/data/driving (skipped when absent)."""

import pytest

from conftest import run_py


@pytest.mark.shared
def test_face_found_in_95_percent_of_every_clip(driving_clips, landmarker_path):
    r = run_py(f"""
import json, cv2
from live.stages.capture import open_capture
from live.stages.tracking import TrackingStage
out = {{}}
for path in {[str(c) for c in driving_clips]!r}:
    cap = open_capture(path)
    stage = TrackingStage({str(landmarker_path)!r})
    cap.start(); stage.start()
    frames = faces = 0
    while (f := cap.read()) is not None:
        frames += 1
        faces += stage.process(f).has_face
    stage.close(); cap.close()
    out[path] = [faces, frames]
print(json.dumps(out))
""", timeout=600)
    for path, (faces, frames) in r.items():
        assert frames > 0 and faces >= 0.95 * frames, f"{path}: face in {faces}/{frames}"
