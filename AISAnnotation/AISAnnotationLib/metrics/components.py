"""Connected components (lesions) with 26-connectivity, as in the ISLES'22 evaluation.

Two lesion voxels belong to the same lesion when they share a face, an edge or a corner
(``cc3d.connected_components(..., connectivity=26)`` in the official code; here SimpleITK's
``ConnectedComponent`` with ``fullyConnected=True``, which is the same relation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


@dataclass(frozen=True)
class Components:
    """Labelled lesions of one mask.

    Attributes:
        labels: int32 label image (0 background, 1..count lesions), same shape as the mask.
        count: number of lesions.
        sizes: voxels per lesion, ``sizes[k - 1]`` for label k (int64, length ``count``).
    """

    labels: np.ndarray
    count: int
    sizes: np.ndarray


def label_components(mask: np.ndarray) -> Components:
    """Label the 26-connected components of a binary mask.

    Labels are numbered in order of each lesion's first voxel in C (i, j, k) order.
    """
    m = np.asarray(mask)
    if m.size == 0 or not m.any():
        return Components(np.zeros(m.shape, dtype=np.int32), 0, np.zeros(0, dtype=np.int64))
    img = sitk.GetImageFromArray(m.astype(np.uint8, copy=False))
    lab = sitk.ConnectedComponent(img, True)  # fullyConnected=True: 26-neighbourhood in 3D
    labels = sitk.GetArrayFromImage(lab).astype(np.int32, copy=False)
    sizes = np.bincount(labels.ravel())[1:].astype(np.int64)
    return Components(labels, int(sizes.size), sizes)


def count_components(mask: np.ndarray) -> int:
    """Number of 26-connected lesions in a binary mask."""
    return label_components(mask).count
