"""Warp stage: the geometric channel. After synthesis, the rendered face's pixels are moved for the shape of every
movement the driver makes that the latent did not draw (a pout, a press, a squint, where the eyes look).

Per frame: the driver's mesh motion from their neutral (the encoder's reference face, `Frame.neutral`), head pose
removed, transferred onto the avatar's neutral mesh (live.transfer); what the latent already moved taken off, the
render's mesh either predicted from the frame's offset (live.avatar_mesh: measured once at start, the default) or
observed (MediaPipe on every render: ~10-15 ms more, and its jitter); the rest applied as a smooth warp inside the
face oval (live.warp). A frame the stage cannot measure (no driver face; observed: no face on the render) passes
unwarped.
Freeze holds the warp's target; when the driver's face is lost it eases back to none, as the encoder's offset does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from live import mesh, transfer
from live.avatar_mesh import AvatarMesh, Direction
from live.controls import Controls
from live.frames import Frame
from live.landmarker import FaceTracker
from live.warp import eye_opening, slide_eye, warp_face

log = logging.getLogger(__name__)

FEATHER_IOD = 0.25  # the warp fades in over this many inter-ocular distances inside the face oval
DEADBAND_PX = 0.3  # each point's move is shortened by this (MediaPipe's jitter on a still render, 256²)
NEUTRAL_PASSES = 12  # MediaPipe's VIDEO mode settles on a still image over frames (1.4 px -> 0.03 px by the 12th)


class WarpStage:
    name = "warp"

    def __init__(self, model_path: Path, render: Callable[[np.ndarray], np.ndarray],
                 directions: list[Direction] | None, controls: Controls | None = None, release_s: float = 0.5,
                 gains: dict[str, float] | None = None, avatar_mesh: AvatarMesh | None = None, undo: float = 0.5,
                 hold: bool = True, gaze: bool = True):
        # model_path: face_landmarker.task; render: offset [1,K,512] -> the avatar as synthesis renders it ([S,S,3]
        # uint8; called at start); directions: what the offsets are made of (live.avatar_mesh.encoder_directions),
        # probed at start to predict the render's mesh, or None to track every render instead; controls: live
        # strength (controls.warp_strength, 0 = off) and freeze; release_s: time constant of the ease back when the
        # driver's face is lost; gains: the share of each group's move (live.transfer.GROUPS) the warp makes;
        # avatar_mesh: the predicted mode's probe of this avatar when already made (a server's peers share one);
        # undo: the largest share of the latent's own motion of a point the warp may take back (transfer.limit_undo);
        # hold: keep the nose, cheeks and chin front where the render has them (mesh.HELD); gaze: slide each iris
        # along its eye under the lids (transfer.split_gaze, warp.slide_eye) rather than bend the spline for it.
        self.tracker = FaceTracker(model_path, num_faces=1, max_side=4096, video=directions is None)
        self.render, self.directions = render, directions
        self.controls = controls or Controls()
        self.release_s = release_s
        self.gains, self.undo, self.hold, self.gaze = gains, undo, hold, gaze
        self.k = None if directions is None else directions[0].vector.size // 512
        self.avatar_mesh: AvatarMesh | None = avatar_mesh  # predicted mode
        self.avatar_neutral: np.ndarray | None = None  # [478,3] pixels of the avatar at rest
        self._target: np.ndarray | None = None  # [478,2] last target motion in the avatar's neutral
        self._t: float | None = None
        self._clock = 0.0  # MediaPipe's VIDEO mode needs rising timestamps: the stage keeps its own

    def start(self) -> None:
        self.tracker.open()
        if self.directions is not None:
            if self.avatar_mesh is None:
                self.avatar_mesh = AvatarMesh.measure(self.render, self._track, self.directions, self.k)
            self.avatar_neutral = self.avatar_mesh.neutral
            self.render = None  # its network (tens of MB) is not needed again
            return
        image = self.render(None)
        self.render = None
        for _ in range(NEUTRAL_PASSES):
            points = self._track(image)
        if points is None:
            raise ValueError("no face found on the avatar's neutral render: the warp cannot run on this identity "
                             "(start without it: --no-warp)")
        self.avatar_neutral = points

    def _track(self, image: np.ndarray) -> np.ndarray | None:
        """[478,3] pixels of the face on a render, or None."""
        self._clock += 1.0 / 30
        faces = self.tracker.detect(image, self._clock)
        return mesh.to_pixels(faces[0].landmarks, image.shape[1], image.shape[0]) if faces else None

    def close(self) -> None:
        self.tracker.close()

    def process(self, frame: Frame) -> Frame:
        strength = self.controls.warp_strength
        target = self._follow(frame)
        render = frame.output
        if strength <= 0 or target is None or not isinstance(render, np.ndarray):
            return frame
        if self.avatar_mesh is not None:
            points = self.avatar_mesh.predict(frame.offset, frame.avatar_roll)
        elif (points := self._track(render)) is None:
            return frame
        size = render.shape[0]
        moved = list(transfer.MOVED)
        move = transfer.residual(strength * target, points, self.avatar_neutral, self.gains, self.undo)
        length = np.linalg.norm(move[moved], axis=1, keepdims=True)
        move[moved] *= np.clip(1 - DEADBAND_PX * size / 256 / np.maximum(length, 1e-9), 0, 1)
        if not move[moved].any():
            return frame
        slides = []
        if self.gaze:
            move, slides = transfer.split_gaze(move, points)
        oval = points[list(mesh.FACE_OVAL), :2]
        src = points[moved, :2]
        held = points[list(mesh.HELD), :2] if self.hold else None
        output = warp_face(render, src, src + move[moved], oval, FEATHER_IOD * mesh.interocular(points), held)
        after = points[:, :2] + move
        for eye, shift in slides:
            corners, upper, lower, _ = mesh.EYE_PARTS[eye]
            output = slide_eye(output, eye_opening(after, corners, upper, lower), after[list(corners)], shift)
        return frame.replace(output=output, render=render)

    def _follow(self, frame: Frame) -> np.ndarray | None:
        """This frame's target motion (held when frozen, eased to none without a driver face), or None."""
        dt = 0.0 if self._t is None else max(0.0, frame.t_media_s - self._t)
        self._t = frame.t_media_s
        if self.controls.freeze:
            return self._target
        if frame.face is None or frame.neutral is None:
            if self._target is not None:
                self._target = self._target * (math.exp(-dt / self.release_s) if self.release_s > 0 else 0.0)
            return self._target
        h, w = frame.image.shape[:2]
        self._target = transfer.transfer(mesh.to_pixels(frame.face.landmarks, w, h),
                                         mesh.to_pixels(frame.neutral.landmarks, w, h), self.avatar_neutral)
        return self._target
