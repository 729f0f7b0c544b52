"""One typed config tree. The CLI (and later a YAML file) only fill it; stages read their own part."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CaptureConfig:
    input: str = "0"  # camera index, video file, image file or folder of images
    realtime: bool = False  # pace files to their frame rate, as a camera would deliver them
    loop: bool = False  # start files again at their end
    fps: float | None = None  # frame rate for images (default 30), or to ask of a camera
    max_frames: int | None = None  # stop after this many frames


@dataclass
class TrackingConfig:
    smoothing: float = 1.0  # One-Euro strength: 0 off, 1 default, 2 twice as smooth
    num_faces: int = 2  # faces MediaPipe looks for; the largest is tracked
    max_side: int = 640  # frames are downscaled to this longest side before MediaPipe


@dataclass
class SynthesisConfig:
    backend: str = "torch"  # torch, torch-compile, torch-compile-bf16, onnxruntime, openvino, tensorrt
    device: str = "cpu"  # cpu or cuda
    size: int = 256  # output side: 256, 512 or 1024
    early_exit: bool = True  # below 1024: fitted early-exit head (else render 1024 and downsample)
    head: str = "auto"  # the early exit's head: learned (live.models.live_head), linear (the closed-form one), or
    # auto: learned, except for an enrolled identity without a tuning (see live.stages.learned_head)
    k: int | None = None  # leading style layers that take the per-frame offset (None: the encoder's)
    engines: Path | None = None  # where ONNX exports are kept and looked up (None: the repository's engines/)
    seed: int = 0  # generated identity (used when identity_file is None)
    identity_file: Path | None = None  # an enrolled identity (`live enroll`)
    truncation: float = 0.7


@dataclass
class EncoderConfig:
    relative: bool = True  # driver's change from their own neutral (else absolute signals)
    smoothing_s: float = 0.0  # extra smoothing of the offset (time constant, seconds; 0 = none)
    release_s: float = 0.5  # ease back to neutral when the face is lost (time constant, seconds)
    expression_gain: float = 1.0  # 0..2
    pose_gain: float = 1.0  # 0..2
    fit_avatar: bool = True  # measure the identity governor's costs on the avatar itself (once, cached)
    rest: str = "auto"  # "own": the avatar rests as its identity looks; "neutral": a face that smiles at rest is
    # taken back towards a neutral mouth by the latent (live.rest); "auto": neutral with the warp, else own
    # (measured: benchmarks/QUALITY.md)


@dataclass
class WarpConfig:
    enabled: bool = False  # the geometric channel: warp the render for the driver's face movements (off until it
    # keeps identity and pose as well as the latent alone: benchmarks/QUALITY.md, 2026-12-03)
    strength: float = 1.0  # 0..2: scale of the warp (the starting value of the live control)
    mouth: float = 1.0  # 0..2: the share of each group's move the warp makes (0: as the latent drew it)
    eyes: float = 1.0
    brows: float = 1.0
    undo: float = 0.5  # 0..1: the largest share of the latent's own motion of a face point the warp may take back
    # (live.transfer.limit_undo; 0: the warp only adds to what the latent drew; 1: it may take all of it back)
    hold: bool = True  # the warp keeps the nose, cheeks and chin front where the render has them (live.mesh.HELD)
    gaze: bool = True  # where the eyes look: each iris slides along its eye under the lids (live.warp.slide_eye)
    residual: str = "predicted"  # how the render's own mesh is known: "predicted" from the offset (probed once at
    # start, live.avatar_mesh) or "observed" (MediaPipe on every render)


@dataclass
class FrameConfig:
    size: tuple[int, int] | None = None  # (width, height) of the frame sent out (live.compose), None: the avatar's
    # square as synthesis renders it
    fixed_head: bool = False  # the avatar stays where its photo has it (no head translation or scale)


@dataclass
class PipelineConfig:
    warmup: int = 5  # frames left out of the statistics


@dataclass
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    frame: FrameConfig = field(default_factory=FrameConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
