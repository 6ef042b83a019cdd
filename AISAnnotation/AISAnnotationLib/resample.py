"""Resampling onto the DWI reference grid in physical space (SimpleITK)."""

from __future__ import annotations

import numpy as np

from .image import Image
from .io import image_to_sitk, sitk_to_array_affine


def resample_to(image: Image, reference: Image, interpolation: str = "linear",
                default: float = 0.0) -> Image:
    """Resample a 3D ``image`` onto ``reference``'s grid (RAS physical space respected).

    Args:
        interpolation: "linear", "nearest" (labels/masks) or "bspline".
        default: value outside the source's field of view.
    """
    import SimpleITK as sitk

    interp = {
        "linear": sitk.sitkLinear,
        "nearest": sitk.sitkNearestNeighbor,
        "bspline": sitk.sitkBSpline,
    }[interpolation]
    src = image_to_sitk(image, np.asarray(image.array, dtype=np.float32))
    ref = image_to_sitk(reference, np.zeros(reference.shape3, dtype=np.uint8))
    out = sitk.Resample(src, ref, sitk.Transform(), interp, float(default), sitk.sitkFloat32)
    arr, _ = sitk_to_array_affine(out)
    res = Image(array=arr, affine=reference.affine.copy(), meta=dict(image.meta), name=image.name)
    res.meta["AISResampledTo"] = "DWI grid"
    return res


def resample_spacing(image: Image, spacing_mm: float, interpolation: str = "linear") -> Image:
    """Resample ``image`` to an isotropic grid of ``spacing_mm`` covering the same extent."""
    sp = np.array(image.spacing)
    n = np.array(image.shape3)
    new_n = np.maximum(1, np.round(n * sp / spacing_mm)).astype(int)
    affine = image.affine.copy()
    affine[:3, :3] = image.direction * spacing_mm
    # keep the field-of-view corner: voxel centre shift of half a voxel difference
    shift = image.direction @ ((spacing_mm - sp) / 2.0)
    affine[:3, 3] = image.affine[:3, 3] + shift
    ref = Image(array=np.zeros(tuple(new_n), dtype=np.uint8), affine=affine)
    return resample_to(image, ref, interpolation)
