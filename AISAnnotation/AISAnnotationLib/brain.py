"""Brain masks from DWI b0 / b1000 intensity (no atlas, no model)."""

from __future__ import annotations

import numpy as np

from .image import Image
from .io import image_to_sitk

OPENING_MM = 4.0


def brain_mask(image: Image, erode_mm: float = 0.0) -> np.ndarray:
    """Boolean brain mask of a b0 or DWI image.

    Method: Otsu threshold of the positive voxels (separates tissue from air and
    background noise); an opening by :data:`OPENING_MM` so the scalp falls away;
    the largest 26-connected component; holes filled in 3D and slice by slice
    (ventricles, dark lesions); optional erosion by ``erode_mm``
    (mm, ball in physical space) to drop skull-edge and partial-volume voxels.
    """
    import SimpleITK as sitk

    arr = np.asarray(image.array, dtype=np.float32)
    if arr.ndim == 4:
        arr = arr.mean(axis=3)
    pos = arr[arr > 0]
    if pos.size == 0:
        return np.zeros(arr.shape, dtype=bool)
    thr = _otsu(pos)
    fg = image_to_sitk(image, (arr > thr).astype(np.uint8))
    # opening by ~4 mm cuts the scalp (thin, separated from the brain by dark skull)
    # off the brain before the largest component is chosen
    radius = _radius_vox(image, OPENING_MM)
    core = sitk.BinaryErode(fg, radius, sitk.sitkBall, 0, 1)
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(core, True), sortByObjectSize=True)
    largest = sitk.Equal(cc, 1)
    brain = sitk.And(sitk.BinaryDilate(largest, radius, sitk.sitkBall, 0, 1), fg)
    filled = sitk.BinaryFillhole(brain, fullyConnected=False)
    out = sitk.GetArrayFromImage(filled).transpose(2, 1, 0).astype(bool)
    # fill in-plane holes per axial slice (ventricles, sulci and dark lesions open in 3D)
    for k in range(out.shape[2]):
        if out[:, :, k].any():
            sl = sitk.GetImageFromArray(out[:, :, k].astype(np.uint8))
            out[:, :, k] = sitk.GetArrayFromImage(sitk.BinaryFillhole(sl)).astype(bool)
    if erode_mm > 0:
        radius = _radius_vox(image, erode_mm)
        if any(radius):
            er = sitk.BinaryErode(
                image_to_sitk(image, out.astype(np.uint8)), radius, sitk.sitkBall, 0, 1
            )
            out = sitk.GetArrayFromImage(er).transpose(2, 1, 0).astype(bool)
    return out


def _radius_vox(image: Image, mm: float) -> list[int]:
    """Per-axis radius in voxels of a ball of ``mm`` (0 on axes coarser than the ball)."""
    return [int(max(0, np.floor(mm / s))) for s in image.spacing]


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu threshold of a 1D sample (on a log scale for heavy right tails)."""
    x = np.log1p(values.astype(np.float64) - values.min())
    hist, edges = np.histogram(x, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m = np.cumsum(hist * centers)
    mu0 = m / np.maximum(w0, 1)
    mu1 = (m[-1] - m) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    t = centers[int(np.argmax(between))]
    return float(np.expm1(t) + values.min())
