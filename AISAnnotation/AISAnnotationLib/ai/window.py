"""Model grid and sliding-window inference with ONNX Runtime.

The model grid is axis-aligned with the card's orientation, has the card's spacing and covers
the DWI field of view. Inputs are resampled onto it (linear), normalised per channel, run patch by
patch (``patch_size`` with ``overlap``; overlapping outputs are averaged with equal weights), and
the lesion probability is resampled back onto the DWI grid (linear).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import InputError
from ..image import Image
from .card import AXIS_LETTERS, ModelCard


def model_grid(reference: Image, card: ModelCard) -> Image:
    """An empty image on the model's grid covering ``reference``'s field of view."""
    direction = np.zeros((3, 3))
    for col, code in enumerate(card.orientation):
        axis, sign = AXIS_LETTERS[code]
        direction[axis, col] = sign
    n = np.array(reference.shape3)
    corners = np.array([[a, b, c] for a in (0, n[0] - 1) for b in (0, n[1] - 1) for c in (0, n[2] - 1)], float)
    ras = reference.ijk_to_ras(corners)
    local = ras @ direction  # coordinates along the model axes
    lo, hi = local.min(axis=0), local.max(axis=0)
    sp = np.array(card.spacing_mm)
    size = np.maximum(1, np.floor((hi - lo) / sp + 1e-6).astype(int) + 1)
    affine = np.eye(4)
    affine[:3, :3] = direction * sp[None, :]
    affine[:3, 3] = direction @ lo
    return Image(array=np.zeros(tuple(size), dtype=np.uint8), affine=affine, name="model grid")


def normalise(x: np.ndarray, spec: dict) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    method = spec.get("method", "zscore")
    if method == "none":
        return x
    if method == "linear":
        return x * np.float32(spec.get("scale", 1.0)) + np.float32(spec.get("offset", 0.0))
    fg = x[x > 0]
    if fg.size < 2:
        return np.zeros_like(x)
    return ((x - fg.mean()) / max(float(fg.std()), 1e-6)).astype(np.float32)


def _starts(n: int, p: int, step: int) -> list[int]:
    if n <= p:
        return [0]
    s = list(range(0, n - p + 1, step))
    if s[-1] != n - p:
        s.append(n - p)
    return s


def sliding_window(run: Any, volume: np.ndarray, patch: tuple[int, int, int], overlap: float) -> np.ndarray:
    """Average of ``run(patch batch)`` over overlapping patches.

    ``volume`` is (C, X, Y, Z) float32; ``run`` maps a (1, C, px, py, pz) array to (1, K, px, py, pz).
    The volume is zero-padded (at the end) to at least one patch. Returns (K, X, Y, Z) float32.
    """
    c, *shape = volume.shape
    pad = [max(0, p - s) for p, s in zip(patch, shape)]
    v = np.pad(volume, [(0, 0)] + [(0, q) for q in pad]) if any(pad) else volume
    full = v.shape[1:]
    steps = [max(1, int(round(p * (1.0 - overlap)))) for p in patch]
    acc: Optional[np.ndarray] = None
    count = np.zeros(full, dtype=np.float32)
    for x in _starts(full[0], patch[0], steps[0]):
        for y in _starts(full[1], patch[1], steps[1]):
            for z in _starts(full[2], patch[2], steps[2]):
                sl = (slice(x, x + patch[0]), slice(y, y + patch[1]), slice(z, z + patch[2]))
                out = np.asarray(run(v[(slice(None),) + sl][None]), dtype=np.float32)
                if out.ndim != 5 or out.shape[0] != 1 or tuple(out.shape[2:]) != tuple(patch):
                    raise InputError(f"model output shape {out.shape} does not match patch {list(patch)}")
                if acc is None:
                    acc = np.zeros((out.shape[1],) + tuple(full), dtype=np.float32)
                acc[(slice(None),) + sl] += out[0]
                count[sl] += 1
    assert acc is not None
    acc /= count[None]
    return acc[:, : shape[0], : shape[1], : shape[2]]


def activate(logits: np.ndarray, activation: str) -> np.ndarray:
    if activation == "softmax":
        e = np.exp(logits - logits.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    return logits


def select_providers(device: str = "auto") -> list[str]:
    """ONNX Runtime execution providers: CPU, or a GPU provider first when one is installed (``auto``)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    gpu = [p for p in ("CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider",
                       "CoreMLExecutionProvider") if p in available]
    if device == "gpu" and not gpu:
        raise InputError(f"no GPU execution provider in this ONNX Runtime (available: {', '.join(available)})")
    return gpu + ["CPUExecutionProvider"]


def predict_probability(onnx_path: Any, card: ModelCard, channels: list[Image], reference: Image,
                        device: str = "auto") -> tuple[np.ndarray, list[str]]:
    """Lesion probability on ``reference``'s grid from input images (on that grid), and the providers used."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InputError("the model plug-in needs ONNX Runtime: pip install 'ais-annotation[ai]'") from exc
    from ..resample import resample_to

    grid = model_grid(reference, card)
    vols = [normalise(resample_to(im, grid, "linear").array, spec) for im, spec in zip(channels, card.normalization)]
    volume = np.stack(vols, axis=0).astype(np.float32)
    if card.axis_order == "zyx":
        volume = volume.transpose(0, 3, 2, 1)
    try:
        sess = ort.InferenceSession(str(onnx_path), providers=select_providers(device))
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise InputError(f"{onnx_path}: ONNX Runtime cannot load the model ({str(exc).splitlines()[0]})") from exc
    name = sess.get_inputs()[0].name
    prob = activate(sliding_window(lambda x: sess.run(None, {name: x})[0], volume, card.patch_size, card.overlap),
                    card.activation)
    if card.output_channel >= prob.shape[0]:
        raise InputError(f"model has {prob.shape[0]} output channel(s); the card asks for {card.output_channel}")
    p = prob[card.output_channel]
    if card.axis_order == "zyx":
        p = p.transpose(2, 1, 0)
    back = resample_to(grid.with_array(np.ascontiguousarray(p, dtype=np.float32)), reference, "linear")
    return np.clip(back.array, 0.0, 1.0), sess.get_providers()
