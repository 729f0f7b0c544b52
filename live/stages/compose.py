"""Compose stage: the last image step before the sinks. The avatar crop becomes a webcam-like frame (live.compose):
pasted back into the enrolled photo (or the generator's own picture of a generated identity), at the frame size,
the head moved and scaled in the picture as the driver's head moves towards or across their camera.

The head's move is the driver's translation from their neutral (MediaPipe's facial transformation matrix, the
tracking stage's smoothed `Face.translation`), in units of the driver's inter-ocular distance, applied in the
avatar's; scaled by the pose gain, limited to what a webcam would show, held on freeze and eased back to rest when
the face is lost, as the encoder's offset is. On the GPU path the avatar is downloaded here (the frame is made on
the host).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from live.compose import (
    HEAD_STEP_PX,
    Scene,
    compose,
    head_move,
    move_distance,
    moved_head,
)
from live.controls import Controls
from live.frames import Face, Frame
from live.gpu import OnHost

IOD_CM = 9.3  # the driver's inter-ocular distance in MediaPipe's metric face units (iod_px * -z / focal, measured
# on d3: focal 0.93 of the image side from regressing the face's image position on x/-z with yaw taken out)
MAX_MOVE_IOD = 1.2  # the head moves at most this many inter-ocular distances each way (~0.12 of a 720p frame)
SCALE_RANGE = (0.85, 1.2)  # and is scaled within this range (leaning in, sitting back)


def driver_move(face: Face, neutral: Face) -> tuple[float, float, float]:
    """(dx, dy, scale) of the driver's head from their neutral: image right and down in inter-ocular distances at
    the neutral's depth, and the change of apparent size (> 1 when nearer)."""
    x, y, z = face.translation
    x0, y0, z0 = neutral.translation
    if z >= -1e-3 or z0 >= -1e-3:  # a head at or behind the camera: MediaPipe lost it
        return 0.0, 0.0, 1.0
    du, dv = x / -z - x0 / -z0, y / -z - y0 / -z0
    return du * -z0 / IOD_CM, -dv * -z0 / IOD_CM, z0 / z


class ComposeStage:
    name = "compose"

    def __init__(self, make_scene: Callable[[], Scene], controls: Controls | None = None, fixed_head: bool = False,
                 release_s: float = 0.5):
        # make_scene: builds the Scene (called in start(): renders and tracks the avatar at rest); controls: the
        # pose gain (scales the move) and freeze; fixed_head: the avatar stays where the photo has it; release_s:
        # time constant of the ease back to rest when the driver's face is lost.
        self.make_scene = make_scene
        self.controls = controls or Controls()
        self.fixed_head = fixed_head
        self.release_s = release_s
        self.scene: Scene | None = None
        self.on_host = OnHost()
        self._move = np.array([0.0, 0.0, 0.0])  # dx, dy (inter-ocular distances), log scale
        self._held: np.ndarray | None = None  # [2,3] the head move the frame shows (None: at rest)
        self._held_head: np.ndarray | None = None  # the scene's head box moved by it (moved_head; None at rest)
        self._holding = False  # whether _held and _held_head have been made
        self._t: float | None = None

    def start(self) -> None:
        self.scene = self.make_scene()
        self._holding = False  # a head moved in another scene is not this one's

    def close(self) -> None:
        pass

    def process(self, frame: Frame) -> Frame:
        frame = self.on_host(frame)
        if frame.output is None:
            return frame
        move = None if self.fixed_head else self._follow(frame)
        if not self._holding or move_distance(self.scene, move, self._held) >= HEAD_STEP_PX:
            self._held, self._held_head, self._holding = move, moved_head(self.scene, move), True
        image = compose(self.scene, frame.output, self._held, frame.avatar_roll, self._held_head)
        return frame.replace(output=image)

    def _follow(self, frame: Frame) -> np.ndarray | None:
        """This frame's head move ([2,3] frame -> frame), or None at rest."""
        dt = 0.0 if self._t is None else max(0.0, frame.t_media_s - self._t)
        self._t = frame.t_media_s
        if self.controls.freeze:  # held
            pass
        elif frame.face is None or frame.neutral is None:  # eased back to rest
            self._move = self._move * (math.exp(-dt / self.release_s) if self.release_s > 0 else 0.0)
        else:
            dx, dy, scale = driver_move(frame.face, frame.neutral)
            gain = self.controls.pose_gain
            self._move = np.clip([gain * dx, gain * dy, gain * math.log(scale)],
                                 [-MAX_MOVE_IOD, -MAX_MOVE_IOD, math.log(SCALE_RANGE[0])],
                                 [MAX_MOVE_IOD, MAX_MOVE_IOD, math.log(SCALE_RANGE[1])])
        if not self._move.any():
            return None
        return head_move(self.scene, self._move[0], self._move[1], math.exp(self._move[2]))
