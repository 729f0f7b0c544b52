"""Enrollment: one portrait -> an `Identity` (W+ latent, optional tuned head, measured fidelity).

    portrait -> read (any size, grayscale ok) -> MediaPipe face (largest) -> FFHQ crop 256²
             -> inversion (live.inversion) -> [tune the output head] -> fidelity -> identity file

Results are cached by (portrait bytes, quality, tune, generator, enrollment version), so enrolling the
same photo again, or `live run --identity photo.jpg`, reuses the work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from live.align import ffhq_align, ffhq_quad
from live.assets import AssetError
from live.identity_file import (
    SUFFIX,
    Identity,
    IdentityFileError,
    load_identity,
    save_identity,
)
from live.image_file import truncated
from live.inversion import QUALITY, SIZE, InversionSettings, Inverter

log = logging.getLogger(__name__)

ENROLL_VERSION = "1"  # bump when the recipe changes: cached identities are then made again
MIN_FACE_PX = 128  # smallest FFHQ crop side (in source pixels) worth enrolling: the crop is 256²
MAX_DECODE_SIDE = 4096  # larger images are decoded reduced (bounded memory)
TUNE_STEPS = {"fast": 80, "best": 200}  # pivotal tuning's steps (live.tuning)
TUNE_VERSION = "pti5"  # in the cache key of tuned enrollments: those made by an earlier tuning are made again
PHOTO_MAX_SIDE = 1080  # the kept photo is scaled down until the face's FFHQ crop is at most this many pixels across
# (a 1080p frame shows the crop at 1080 px: FRAMING in live.compose)
PHOTO_REACH = (1.3, 1.0)  # the kept photo reaches this many crop sides left/right and up/down of the crop's centre
# (a 16:9 frame shows 0.89 each way, and can shift towards the photo)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


class EnrollError(ValueError):
    """A portrait that cannot be enrolled, with the reason and what to do."""


@dataclasses.dataclass(frozen=True)
class FoundFace:
    crop: np.ndarray  # [256,256,3] uint8 RGB, FFHQ-aligned
    faces: int  # faces MediaPipe saw
    side_px: float  # crop side in source pixels
    quad: np.ndarray  # [4,2] float64 the crop's corners in source pixels (live.align.ffhq_quad)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_portrait(path: Path | str) -> np.ndarray:
    """[H,W,3] uint8 RGB of an image file; huge images are decoded at a reduced size."""
    path = Path(path).expanduser()
    if not path.exists():
        raise EnrollError(f"portrait {path} not found")
    if path.is_dir():
        raise EnrollError(f"{path} is a folder; give one image file")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise EnrollError(f"cannot read {path}: {exc.strerror or exc}") from None
    small = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8)
    if small is None:
        raise EnrollError(f"{path} is not an image OpenCV can read (JPEG, PNG, WebP, BMP, TIFF ...)")
    if truncated(path):
        raise EnrollError(f"{path} ends before its image does (truncated: a download or copy that did not "
                          "finish?); copy the portrait again")
    full_side = max(small.shape[:2]) * 8  # the 1/8 decode tells the size (to within 8 px)
    flag = cv2.IMREAD_COLOR
    for factor, reduced in ((2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4),
                            (8, cv2.IMREAD_REDUCED_COLOR_8)):
        if full_side > MAX_DECODE_SIDE:  # decode at the smallest reduction that fits
            flag = reduced
            if full_side / factor <= MAX_DECODE_SIDE:
                break
    bgr = small if flag == cv2.IMREAD_REDUCED_COLOR_8 else cv2.imread(str(path), flag)
    if bgr is None:
        raise EnrollError(f"{path} could not be decoded (truncated or damaged?)")
    if flag != cv2.IMREAD_COLOR:
        log.info("%s is large: decoded at %dx%d", path.name, bgr.shape[1], bgr.shape[0])
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def find_face(rgb: np.ndarray, landmarker_path: Path, name: str = "the portrait") -> FoundFace:
    """The largest face in `rgb`, FFHQ-aligned at 256²."""
    from live.landmarker import faces_in_image

    faces = faces_in_image(landmarker_path, rgb, num_faces=4)
    if not faces:
        raise EnrollError(f"no face found in {name}: use a photo of one person's face, seen from the front, "
                          f"at least {MIN_FACE_PX} px across (paintings and cartoons work only when they look "
                          "like photos to MediaPipe)")
    if len(faces) > 1:
        log.warning("%d faces in %s: enrolling the largest", len(faces), name)
    h, w = rgb.shape[:2]
    quad = ffhq_quad(np.asarray(faces[0].landmarks)[:, :2] * [w, h])
    side = float(np.hypot(*(quad[3] - quad[0])))
    if side < MIN_FACE_PX:
        raise EnrollError(f"the face in {name} is too small to enroll: its crop is {side:.0f} px, the minimum is "
                          f"{MIN_FACE_PX} px (eyes about {MIN_FACE_PX // 4} px apart); use a closer or larger photo")
    crop = ffhq_align(rgb, faces[0].landmarks, SIZE).image
    score = human_face_score(crop)
    if score is not None and score <= 0.0:
        raise EnrollError(f"no face found in {name}: MediaPipe saw something face-like, but it is not a human "
                          f"face seen from the front (dlib's detector score {score:.2f} on the aligned crop; "
                          "animals and heavily stylised drawings are refused). Use a photo of a person facing "
                          "the camera")
    return FoundFace(crop=crop, faces=len(faces), side_px=side, quad=quad)


def keep_photo(rgb: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The part of the portrait a frame can show (PHOTO_REACH around the face's crop), scaled so the crop is at most
    PHOTO_MAX_SIDE across, and the crop's corners in it: what the identity file keeps to paste the avatar back."""
    from live.compose import quad_side

    side = quad_side(quad)
    centre = quad.mean(0)
    reach = np.array(PHOTO_REACH) * side
    x0, y0 = np.maximum(0, np.floor(centre - reach)).astype(int)
    x1, y1 = np.minimum([rgb.shape[1], rgb.shape[0]], np.ceil(centre + reach)).astype(int)
    photo = rgb[y0:y1, x0:x1]
    quad = quad - [x0, y0]
    scale = min(1.0, PHOTO_MAX_SIDE / side)
    if scale < 1.0:
        w, h = max(1, round(photo.shape[1] * scale)), max(1, round(photo.shape[0] * scale))
        quad = quad * [w / photo.shape[1], h / photo.shape[0]]
        photo = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(photo), quad


def human_face_score(crop: np.ndarray) -> float | None:
    """dlib's HOG frontal-face score on an aligned crop (> 0: a human face; measured: people 0.9 .. 2.8,
    the dog in the shared portraits -0.49), or None when dlib is not installed."""
    try:
        import dlib
    except ImportError:
        log.info("dlib is not installed: skipping the human-face check")
        return None
    detector = dlib.get_frontal_face_detector()
    scores = [s for up in (0, 1) for s in detector.run(np.ascontiguousarray(crop), up, -1.0)[1]]
    return max(scores, default=-1.0)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """[H,W,3] uint8 -> [1,3,H,W] float32 in [-1,1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def to_image(x: torch.Tensor) -> np.ndarray:
    """[1,3,H,W] in [-1,1] -> [H,W,3] uint8 (on the CPU)."""
    from live.gpu import to_image_uint8

    return to_image_uint8(x.detach()).cpu().numpy()


class Enroller:
    """Loads the generator, LPIPS and the output head once; enrolls any number of portraits."""

    def __init__(self, store, cache: bool = True, identity_metric: str = "auto"):
        # store: the asset store; cache: reuse and keep results in <cache>/identities;
        # identity_metric: measure the dlib identity distance: "on" (fetch its models if needed), "off",
        # or "auto" (only when the models are already cached: they are a 122 MB download).
        from live.models.early_exit import load_heads
        from live.models.generator import load_mobilestylegan
        from live.models.lpips import load_lpips

        self.store = store
        self.generator = load_mobilestylegan(store)
        heads = load_heads()
        if heads is None:
            raise EnrollError("this install lacks live/models/early_exit_heads.safetensors; reinstall live")
        self.lpips = load_lpips(store)
        self.inverter = Inverter(self.generator, self.lpips, heads[SIZE])
        self.cache_dir = Path(store.cache_dir).parent / "identities" if cache else None
        if identity_metric not in ("auto", "on", "off"):
            raise ValueError(f"identity_metric must be auto, on or off, got {identity_metric!r}")
        self.identity_metric = identity_metric
        self._identity_metric = None  # the loaded metric, False once it could not be (see _metric)
        self._descriptor = None  # dlib's descriptor in torch (the tuning's identity term), loaded once

    def _metric_cached(self) -> bool:
        names = ("dlib_face_descriptor", "dlib_shape_predictor_68")
        return all(self.store.explicit_path(n) is not None or self.store.cache_path(n).is_file() for n in names)

    def cache_path(self, source_sha256: str, quality: str, tune: bool) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(f"{source_sha256}|{quality}|{int(tune)}{TUNE_VERSION if tune else ''}|"
                             f"{self.generator.source_sha256}|"
                             f"{ENROLL_VERSION}".encode()).hexdigest()[:24]
        return self.cache_dir / f"{key}{SUFFIX}"

    def cached(self, portrait: Path, quality: str = "fast", tune: bool = False) -> Identity | None:
        path = self.cache_path(file_sha256(portrait), quality, tune)
        if path is None or not path.is_file():
            return None
        try:
            hit = load_identity(path, self.generator.source_sha256)
        except IdentityFileError as exc:
            log.warning("ignoring the cached enrollment %s: %s", path, exc)
            return None
        if hit.photo is None:  # cached before identity files kept the photo: add it (a face search, not a refit)
            rgb = read_portrait(portrait)
            hit.photo, hit.photo_quad = keep_photo(rgb, find_face(rgb, self.store.resolve("face_landmarker"),
                                                                  portrait.name).quad)
            save_identity(hit, path)
        return hit

    def enroll(self, portrait: Path | str, quality: str = "fast", tune: bool = False,
               settings: InversionSettings | None = None,
               progress: Callable[[str, int, int, float], None] | None = None) -> Identity:
        """Enroll one portrait. progress(phase, step, steps, lpips) is called as the work goes."""
        portrait = Path(portrait).expanduser()
        if quality not in QUALITY:
            raise EnrollError(f"quality must be one of {', '.join(QUALITY)}, got {quality!r}")
        if settings is None:
            hit = self.cached(portrait, quality, tune)
            if hit is not None:
                log.info("%s was enrolled before (%s): reusing it", portrait.name, quality)
                return hit
        rgb = read_portrait(portrait)
        source_sha = file_sha256(portrait)
        face = find_face(rgb, self.store.resolve("face_landmarker"), portrait.name)
        standard = settings is None
        settings = settings or QUALITY[quality]
        t0 = time.perf_counter()
        target = to_tensor(face.crop)
        done = progress or (lambda *a: None)
        inverted = self.cached(portrait, quality, False) if tune and standard else None
        if inverted is not None:  # enrolled before without --tune: its latent is the pivot
            log.info("%s was inverted before (%s): tuning that latent", portrait.name, quality)
            styles = inverted.styles
        else:
            styles = self.inverter.invert(target, settings, lambda s, lp: done("invert", s, settings.steps, lp)).styles
        tuning = None
        if tune:
            steps = TUNE_STEPS[quality] if standard else max(10, settings.steps // 6)
            tuning = self.tune(styles, target, steps, progress=lambda s, lp: done("tune", s, steps, lp),
                               identity=self.identity_term(target))
        photo, quad = keep_photo(rgb, face.quad)
        identity = Identity(styles=styles, crop=face.crop, generator=self.generator.name,
                            generator_sha256=self.generator.source_sha256, tuning=tuning, photo=photo,
                            photo_quad=quad)
        identity.fidelity = self.fidelity(identity)
        if tuning is not None:
            identity.fidelity["tuned_motion_error"] = round(self.motion_error(identity), 4)
            identity.fidelity["tuning_mb"] = round(tuning.nbytes() / 1e6, 2)
        identity.fidelity["seconds"] = round(time.perf_counter() - t0, 1)
        identity.meta = {"source_sha256": source_sha, "source_name": portrait.name, "quality": quality,
                         "enroll_version": ENROLL_VERSION, "faces_in_source": str(face.faces),
                         "settings": json_settings(settings)}
        path = self.cache_path(source_sha, quality, tune) if standard else None
        if path is not None:
            save_identity(identity, path)
        return identity

    @torch.no_grad()
    def render(self, identity: Identity, offset: torch.Tensor | None = None) -> torch.Tensor:
        """[1,3,256,256] the avatar as `live run --size 256` draws it (offset [1,K,512] on the first layers): through
        its tuning and the learned head if it has one, else through the closed-form head (`--head auto`)."""
        from live.render import SynthesisNet

        k = 0 if offset is None else offset.shape[1]
        net = SynthesisNet(self.generator, identity.styles, k, SIZE, tuning=identity.tuning,
                           learned_head=identity.tuning is not None)  # as `--head auto` draws it
        return net(torch.zeros(1, 0, 512) if offset is None else offset)

    def tune(self, styles: torch.Tensor, target: torch.Tensor, steps: int,
             progress: Callable[[int, float], None] | None = None, identity=None):
        """Pivotal tuning (live.tuning) of the live 256² network around `styles` to `target` ([1,3,256,256]);
        identity: its identity term (live.tuning.IdentityTerm) or None."""
        from live.encoder import load_encoder
        from live.render import SynthesisNet
        from live.tuning import pivotal_tuning

        encoder = load_encoder()
        net = SynthesisNet(self.generator, styles, encoder.k, SIZE)
        return pivotal_tuning(net, target, self.lpips, encoder, steps, progress, identity=identity)

    def identity_term(self, target: torch.Tensor):
        """The tuning's identity term for `target` (live.tuning.IdentityTerm), or None (logged) where dlib's models
        cannot be had (--identity-metric off, offline) or dlib finds no face on the aligned portrait. With
        --identity-metric auto the models are fetched for it (122 MB, once)."""
        from live.train.dlib_net import DlibDescriptor
        from live.tuning import IdentityTerm

        metric = self._metric(fetch=True)
        if metric is None:
            log.warning("tuning without its identity term: dlib's face models are not at hand (--identity-metric "
                        "%s); the avatar may look less like the portrait", self.identity_metric)
            return None
        if self._descriptor is None:
            self._descriptor = DlibDescriptor(self.store.resolve("dlib_face_descriptor"))
        term = IdentityTerm.of(self._descriptor, metric, target)
        if term is None:
            log.warning("tuning without its identity term: dlib finds no face on the aligned portrait")
        return term

    @torch.no_grad()
    def motion_error(self, identity: Identity) -> float:
        """How differently the tuned network renders expression and pose changes than the untuned one:
        mean over test offsets (jaw open, smile, blink, yaw, pitch) of |d_tuned - d_shared| / |d_shared|,
        where d = render(offset) - render(neutral). Small means the tuning changed looks, not motion."""
        from live.encoder import load_encoder
        from live.frames import BLENDSHAPE_NAMES
        from live.models.encoder import signal_vector

        enc = load_encoder()
        shared = dataclasses.replace(identity, tuning=None)
        n0_t, n0_s = self.render(identity), self.render(shared)
        errors = []
        for name, value in (("jawOpen", 0.5), ("mouthSmileLeft", 0.6), ("eyeBlinkLeft", 0.8), ("yaw", 20.0),
                            ("pitch", 10.0)):
            blend, pose = np.zeros(len(BLENDSHAPE_NAMES), np.float32), np.zeros(3, np.float32)
            if name in ("yaw", "pitch"):
                pose[0 if name == "yaw" else 1] = value
            else:
                blend[BLENDSHAPE_NAMES.index(name)] = value
            offset = torch.from_numpy(enc(signal_vector(blend, pose)))
            d_t = self.render(identity, offset) - n0_t
            d_s = self.render(shared, offset) - n0_s
            errors.append(float((d_t - d_s).norm() / d_s.norm().clamp_min(1e-6)))
        return float(np.mean(errors))

    def _metric(self, fetch: bool = False):
        """The dlib identity metric, loaded once per Enroller (its models are 122 MB), or None. With "auto" it is
        loaded when its models are cached, or fetched if `fetch` (pivotal tuning's identity term needs them)."""
        if self._identity_metric is not None:
            return self._identity_metric or None
        if self.identity_metric == "off":
            return None
        if self.identity_metric == "auto" and not fetch and not self._metric_cached():
            log.info("identity distance not measured: its dlib models (122 MB) are not in the cache; "
                     "`live assets fetch dlib_face_descriptor dlib_shape_predictor_68` or --identity-metric on")
            return None
        from live.metrics.face_distance import IdentityMetric

        self._identity_metric = False  # tried: not again for the next portrait
        try:
            self._identity_metric = IdentityMetric(self.store)
        except (RuntimeError, AssetError) as exc:
            log.warning("identity distance not measured: %s", exc)
        return self._identity_metric or None

    def fidelity(self, identity: Identity) -> dict:
        """LPIPS(VGG) and dlib identity distance between the aligned source and the reconstruction: the
        generator's own render (what --size 512/1024 show), and `_256` for the 256² head live uses."""
        target = to_tensor(identity.crop)
        with torch.no_grad():
            outs = {"": self.inverter.render_full(identity.styles, exact=True), "_256": self.render(identity)}
            result = {f"lpips_vgg{k}": round(float(self.lpips(v, target)), 4) for k, v in outs.items()}
            result["mse"] = round(float(F.mse_loss(outs[""], target)), 5)
        metric = self._metric()
        ref = None if metric is None else metric.descriptor(identity.crop)
        for k, v in outs.items():
            d = None if ref is None else metric.descriptor(to_image(v))
            result[f"identity_distance{k}"] = None if d is None else round(metric.distance(ref, d), 4)
        result["size"] = SIZE
        return result


def json_settings(settings: InversionSettings) -> str:
    import json

    return json.dumps(dataclasses.asdict(settings))
