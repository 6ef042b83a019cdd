"""Connected components (lesions) with 26-connectivity, as in the ISLES'22 evaluation.

Two lesion voxels belong to the same lesion when they share a face, an edge or a corner
(``cc3d.connected_components(..., connectivity=26)`` in the official code; here SimpleITK's
``ConnectedComponent`` with ``fullyConnected=True``, which is the same relation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .crop import bounding_box
from .voxels import label_image as _label
from .voxels import lesion_voxels


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


def _components(labels: np.ndarray, count: int, mask: np.ndarray) -> Components:
    sizes = np.bincount(labels[mask], minlength=count + 1)[1:].astype(np.int64)   # lesion voxels only
    return Components(labels, count, sizes)


def label_components(mask: np.ndarray) -> Components:
    """Label the 26-connected components of a binary mask.

    Labels are numbered in order of each lesion's first voxel in C (i, j, k) order. A 3D mask is
    labelled on the bounding box of its voxels only (C order inside the box is C order in the grid).
    """
    m = np.asarray(mask)
    box = bounding_box(m) if m.ndim == 3 else (slice(None),) * m.ndim
    if m.size == 0 or box is None:
        return Components(np.zeros(m.shape, dtype=np.int32), 0, np.zeros(0, dtype=np.int64))
    crop = m[box] != 0
    lab, count = _label(crop)
    if lab.shape == m.shape:
        labels = lab
    else:
        labels = np.zeros(m.shape, dtype=np.int32)
        labels[box] = lab
    sizes = np.bincount(lab.ravel(), minlength=count + 1)[1:].astype(np.int64)
    return Components(labels, count, sizes)


def label_pair(a: np.ndarray, b: np.ndarray) -> tuple[Components, Components]:
    """:func:`label_components` of two same-shape masks in one labelling pass.

    A and B are stacked along the first axis with a background slab between them, so no lesion
    of one touches the other; A's lesions come first in scan order and keep their numbers.
    """
    a = np.asarray(a) != 0
    b = np.asarray(b) != 0
    if a.shape != b.shape:
        raise ValueError(f"masks have different shapes: A {a.shape}, B {b.shape}")
    n = a.shape[0]
    if a.size == 0:
        return label_components(a), label_components(b)
    stacked = np.zeros((2 * n + 1,) + a.shape[1:], dtype=bool)
    stacked[:n] = a
    stacked[n + 1:] = b
    labels, count = _label(stacked)
    la = labels[:n]
    lb = labels[n + 1:]
    count_a = int(la.max())
    np.subtract(lb, count_a, out=lb, where=lb > 0)
    return _components(la, count_a, a), _components(lb, count - count_a, b)


def label_voxels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """26-connected lesions of a sparse bool mask, computed on its lesion voxels only.

    Returns ``(lin, labels, count)``: the C-order linear indices of the lesion voxels (sorted),
    each one's lesion number (1..count, numbered by first voxel in C order, like
    :func:`label_components`) and the number of lesions. Work is proportional to the number of
    lesion voxels plus one pass over the array (see :mod:`.voxels`).
    """
    m = np.asarray(mask, dtype=bool)
    if m.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0
    padded = np.pad(m, 1)                               # neighbours must not wrap across rows
    vox = lesion_voxels(padded)
    i, j, k = np.unravel_index(vox.lin, padded.shape)
    return np.ravel_multi_index((i - 1, j - 1, k - 1), m.shape), vox.labels, vox.count


def count_components(mask: np.ndarray) -> int:
    """Number of 26-connected lesions in a binary mask (labelled on its bounding box only)."""
    m = np.asarray(mask)
    box = bounding_box(m) if m.ndim == 3 else (slice(None),) * m.ndim
    if m.size == 0 or box is None:
        return 0
    return _label(m[box] != 0)[1]
