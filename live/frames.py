"""Frame types that travel between stages.

A `Frame` is made once by the capture stage and then only *replaced* (never mutated) by later stages:
each stage returns `frame.with_face(...)` or similar, and the worker that ran the stage appends its
timing with `frame.timed(...)`. The sequence number, the capture timestamp and the media time are
carried unchanged from capture to sink, the way aiortc copies `pts`/`time_base` onto every new frame.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

# The 52 ARKit-style blendshape names MediaPipe's FaceLandmarker reports, in its output order.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
NUM_LANDMARKS = 478


@dataclass(frozen=True)
class Face:
    """What the tracking stage knows about the face it follows in one frame."""

    landmarks: np.ndarray  # [478,3] float32: x, y in [0,1] of image width/height, z relative depth
    blendshapes: np.ndarray  # [52] float32 in [0,1], ordered as BLENDSHAPE_NAMES
    yaw: float  # degrees, > 0 when the face turns towards the image's right (the person's left)
    pitch: float  # degrees, > 0 when the face tilts up
    roll: float  # degrees, > 0 when the head tilts towards the image's left shoulder (counter-clockwise)
    translation: tuple[float, float, float]  # cm, MediaPipe's canonical face model frame
    matrix: np.ndarray  # [4,4] float32 facial transformation matrix, as MediaPipe reports it
    num_faces: int = 1  # faces MediaPipe saw; this one is the largest

    def blendshape(self, name: str) -> float:
        """Value of one blendshape by name (KeyError names the valid ones)."""
        try:
            return float(self.blendshapes[BLENDSHAPE_NAMES.index(name)])
        except ValueError:
            raise KeyError(f"unknown blendshape {name!r}; valid names: {', '.join(BLENDSHAPE_NAMES)}") from None

    def blendshape_dict(self) -> dict[str, float]:
        return {n: round(float(v), 5) for n, v in zip(BLENDSHAPE_NAMES, self.blendshapes)}


@dataclass(frozen=True)
class Frame:
    """One captured picture and everything the stages learned about it so far."""

    seq: int  # 0, 1, 2, ... in capture order; gaps downstream mean dropped frames
    t_capture_ns: int  # time.perf_counter_ns() when the picture was captured
    t_media_s: float  # presentation time in the source (file pts, or seconds since the camera started)
    image: np.ndarray  # [H,W,3] uint8 RGB
    timings: tuple[tuple[str, float], ...] = ()  # (stage name, milliseconds) in the order stages ran
    face: Face | None = None  # set by the tracking stage; None = no face (or not tracked yet)
    tracked: bool = False  # True once the tracking stage has seen this frame
    offset: np.ndarray | None = field(default=None, repr=False)  # [1,K,512] float32 latent offset (encoder)
    output: np.ndarray | None = field(default=None, repr=False)  # [S,S,3] uint8 RGB synthesised face (on the GPU
    # path a device tensor until the sink: live.gpu.on_host)
    render: np.ndarray | None = field(default=None, repr=False)  # [S,S,3] uint8 the synthesis before the warp
    # moved its pixels (set only when a warp ran): what probes measure the warp's seam against
    ready: object | None = field(default=None, repr=False)  # CUDA event recorded after `output` was queued
    avatar_roll: float = 0.0  # degrees (counter-clockwise) the avatar is turned in-plane after synthesis
    neutral: Face | None = field(default=None, repr=False)  # the driver's neutral face (the encoder's
    # reference in relative mode): what the warp measures the driver's mesh motion from
    signal_change: np.ndarray | None = field(default=None, repr=False)  # [55] the driver's change the encoder
    # was asked (its gains and clamp applied; None without a face): what probes compare the avatar with

    @property
    def has_face(self) -> bool:
        return self.face is not None

    def timed(self, stage: str, ms: float) -> Frame:
        return dataclasses.replace(self, timings=self.timings + ((stage, ms),))

    def replace(self, **changes) -> Frame:
        return dataclasses.replace(self, **changes)

    def timing(self, stage: str) -> float | None:
        for name, ms in self.timings:
            if name == stage:
                return ms
        return None


class EndOfStream:
    """Sentinel put on a queue after the last frame; every worker forwards it and stops."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = EndOfStream()
