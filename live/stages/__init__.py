"""Pipeline stages, one module each. `build_stages` makes them by name from the config tree and one
`Avatar`, so every consumer (the CLI, each WebRTC peer, the benchmarks) assembles the same pipeline and no
stage depends on another having been built first."""

from __future__ import annotations

import logging

import numpy as np

from live.assets import AssetStore
from live.avatar import Avatar, load_avatar
from live.config import Config
from live.controls import Controls
from live.stage import Stage

log = logging.getLogger(__name__)

STAGE_NAMES = ("tracking", "encoder", "synthesis", "warp", "compose")  # in pipeline order; warp only with
# config.warp.enabled, compose only with config.frame.size


def tracking_stage(config: Config, store: AssetStore) -> Stage:
    from live.stages.tracking import TrackingStage

    t = config.tracking
    return TrackingStage(store.resolve("face_landmarker"), smoothing=t.smoothing, num_faces=t.num_faces,
                         max_side=t.max_side)


def encoder_stage(config: Config, avatar: Avatar, controls: Controls | None = None) -> Stage:
    from live.stages.encoder import EncoderStage

    e = config.encoder
    return EncoderStage(avatar.encoder, relative=e.relative, smoothing_s=e.smoothing_s, release_s=e.release_s,
                        expression_gain=e.expression_gain, pose_gain=e.pose_gain, controls=controls,
                        emotion_direction=avatar.emotion)


def learned_head(config: Config, avatar: Avatar) -> bool:
    """Whether the synthesis draws through the learned head: --head learned/linear, or auto: yes, except for an
    enrolled identity without a tuning (the learned head, which cannot see the fine style layers, shifted the colours
    of 3 of 7 inverted portraits: benchmarks/results/enroll-learned-head.png; a tuning's head deltas correct it)."""
    if config.synthesis.head != "auto":
        return config.synthesis.head == "learned"
    return avatar.crop is None or avatar.tuning is not None


def synthesis_stage(config: Config, avatar: Avatar) -> Stage:
    from live.render import SynthesisNet, make_backend
    from live.stages.synthesis import SynthesisStage

    s = config.synthesis
    k = avatar.k if s.k is None else s.k
    net = SynthesisNet(avatar.generator, avatar.styles, k, s.size, s.early_exit, tuning=avatar.tuning,
                       learned_head=learned_head(config, avatar))
    where = {} if s.engines is None else {"engines_dir": s.engines}
    return SynthesisStage(make_backend(s.backend, net, avatar.generator, avatar.styles, device=s.device, **where),
                          device=s.device)


def avatar_render(config: Config, avatar: Avatar):
    """A function giving the avatar at an offset ([1,K,512]; None: at rest) as the synthesis stage renders it
    ([S,S,3] uint8, plain torch, without the roll)."""
    state = {}

    def render(offset=None):
        import torch

        from live.render import SynthesisNet, to_uint8

        if "net" not in state:
            s = config.synthesis
            state["net"] = SynthesisNet(avatar.generator, avatar.styles, avatar.k, s.size, s.early_exit,
                                        tuning=avatar.tuning, learned_head=learned_head(config, avatar))
        x = torch.zeros(1, avatar.k, 512) if offset is None else torch.as_tensor(offset, dtype=torch.float32)
        with torch.no_grad():
            return to_uint8(state["net"](x).numpy())

    return render


def warp_stage(config: Config, store: AssetStore, avatar: Avatar, controls: Controls | None = None,
               avatar_mesh=None) -> Stage:
    """The warp stage; avatar_mesh: its probe of this avatar (live.avatar_mesh.AvatarMesh) when already made."""
    from live.avatar_mesh import encoder_directions
    from live.stages.warp import WarpStage

    w = config.warp
    if w.residual not in ("predicted", "observed"):
        raise ValueError(f"warp.residual must be 'predicted' or 'observed', got {w.residual!r}")
    directions = encoder_directions(avatar.encoder, avatar.emotion) if w.residual == "predicted" else None
    if directions is None and w.residual == "predicted":
        log.info("the warp tracks every render: this encoder's offsets have no directions to predict the mesh from")
    return WarpStage(store.resolve("face_landmarker"), avatar_render(config, avatar), directions, controls,
                     release_s=config.encoder.release_s, gains={"mouth": w.mouth, "eyes": w.eyes, "brows": w.brows},
                     avatar_mesh=avatar_mesh, undo=w.undo, hold=w.hold, gaze=w.gaze)


def scene_parts(config: Config, store: AssetStore, avatar: Avatar) -> tuple:
    """(photo, quad, rest, points): what the compose stage's Scene is made from, the costly part (~2 s: the avatar
    rendered at rest and its face mesh tracked; a generated identity's 1024² picture): the same at every frame size."""
    import torch

    from live.landmarker import faces_in_image
    from live.mesh import to_pixels
    from live.render import SynthesisNet, to_uint8

    rest = avatar_render(config, avatar)(None)
    faces = faces_in_image(store.resolve("face_landmarker"), rest, max_side=4096)
    if not faces:
        raise ValueError("no face found on the avatar at rest: it cannot be pasted into a frame (use --frame avatar)")
    points = to_pixels(faces[0].landmarks, rest.shape[1], rest.shape[0])
    photo, quad = avatar.photo, avatar.photo_quad
    if photo is None:
        if avatar.crop is not None:
            log.info("this identity file keeps no photo (enrolled before photos were kept): the frame is made from "
                     "the generator's picture; enroll again to see your own photo around the avatar")
        net = SynthesisNet(avatar.generator, avatar.styles, avatar.k, 1024, early_exit=False)
        with torch.no_grad():
            photo = to_uint8(net(torch.zeros(1, avatar.k, 512)).numpy())
        quad = np.array([[0, 0], [0, 1024], [1024, 1024], [1024, 0]], np.float64)
    return photo, quad, rest, points


def rest_scene(config: Config, store: AssetStore, avatar: Avatar, parts: tuple | None = None):
    """A function making the compose stage's Scene at config.frame.size: the avatar at rest pasted into its photo (an
    enrolled identity's) or into the generator's own 1024² picture of it. parts: scene_parts, when already made."""
    def make():
        from live.compose import make_scene

        return make_scene(*(parts or scene_parts(config, store, avatar)), config.frame.size)

    return make


def compose_stage(config: Config, store: AssetStore, avatar: Avatar, controls: Controls | None = None) -> Stage:
    from live.stages.compose import ComposeStage

    return ComposeStage(rest_scene(config, store, avatar), controls, fixed_head=config.frame.fixed_head,
                        release_s=config.encoder.release_s)


def build_stages(names: list[str] | tuple[str, ...], config: Config, store: AssetStore,
                 avatar: Avatar | None = None, controls: Controls | None = None) -> list[Stage]:
    """The named stages in the order given. avatar: what the encoder and synthesis drive (default: loaded
    from the config, fitted only when the encoder is among them); controls: the encoder's live controls."""
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; known: {', '.join(STAGE_NAMES)}")
    if "encoder" in names and config.synthesis.k is not None:
        raise ValueError("synthesis.k is set by the encoder when the encoder stage runs: leave it unset")
    if not config.warp.enabled:
        names = [n for n in names if n != "warp"]
    if config.frame.size is None:
        names = [n for n in names if n != "compose"]
    if "warp" in names and "encoder" not in names:
        raise ValueError("the warp stage follows the encoder's neutral: run it with the encoder stage")
    if avatar is None and ("encoder" in names or "synthesis" in names):
        avatar = load_avatar(config, store, fit=config.encoder.fit_avatar and "encoder" in names)
    if controls is None and ("warp" in names or "compose" in names):  # one set for the encoder, the warp and the
        # frame (freeze, re-centre, the pose gain)
        controls = Controls(expression_gain=config.encoder.expression_gain, pose_gain=config.encoder.pose_gain,
                            warp_strength=config.warp.strength)
    stages = []
    for name in names:
        if name == "tracking":
            stages.append(tracking_stage(config, store))
        elif name == "encoder":
            stages.append(encoder_stage(config, avatar, controls))
        elif name == "synthesis":
            stages.append(synthesis_stage(config, avatar))
        elif name == "warp":
            stages.append(warp_stage(config, store, avatar, controls))
        else:
            stages.append(compose_stage(config, store, avatar, controls))
    return stages
