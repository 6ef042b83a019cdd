"""Sparse voxel sets: 26-connected components and region descriptions without full-volume passes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..image import Image
from .result import Candidate

# ----------------------------------------------------------------------------- sparse voxel sets
# The candidate computation works on the (few) brain voxels bright enough on DWI to matter,
# held as sorted flat indices of the [i, j, k] grid: no full-volume pass per update.
_OFFSETS26 = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)
                       if (a, b, c) != (0, 0, 0)], dtype=np.int64)
_OFFSETS13 = _OFFSETS26[13:]  # one of each ± pair


class _Lookup:
    """Flat index → position in a sorted voxel set (−1 elsewhere), for O(1) neighbour tests.

    A dense int32 table (4 bytes/voxel) over the set's bounding box padded by one voxel, built once
    per cached voxel set: a neighbour of a set voxel always falls inside the padded box, so no bounds
    test is needed, and a neighbour outside the grid falls on the (empty) padding, never on another row.
    The table holds position + 1 (0 elsewhere), so it starts as zero pages (no fill).
    """

    def __init__(self, flat: np.ndarray, shape: tuple[int, int, int], ijk: Optional[np.ndarray] = None) -> None:
        self.shape = shape
        self.dims = np.asarray(shape, dtype=np.int64)
        if ijk is None:
            ijk = np.stack(np.unravel_index(flat, shape), axis=1)
        ijk = np.asarray(ijk, dtype=np.int64)
        if flat.size:
            self.lo = ijk.min(axis=0) - 1
            box = ijk.max(axis=0) + 2 - self.lo
        else:
            self.lo, box = np.zeros(3, np.int64), np.ones(3, np.int64)
        self.strides = np.array([box[1] * box[2], box[2], 1], dtype=np.int64)  # of the padded box
        self.table = np.zeros(int(np.prod(box)), dtype=np.int32)
        self.table[self.local(ijk)] = np.arange(1, flat.size + 1, dtype=np.int32)

    def local(self, ijk: np.ndarray) -> np.ndarray:
        """Flat indices in the padded box of voxels ``ijk`` (n × 3)."""
        return (np.asarray(ijk, dtype=np.int64) - self.lo) @ self.strides

    def neighbours(self, ijk: np.ndarray, flat: np.ndarray, offsets: np.ndarray,
                   index: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (p, q): voxel ``p`` of (``ijk``, ``flat``), voxels of the set, has a neighbour at set
        position ``q``.

        With ``index`` (length set size + 1, last entry −1) positions are mapped through it and
        pairs mapping to −1 are dropped: neighbours restricted to a subset of the set.
        """
        srcs, dsts = [], []
        loc = self.local(ijk)
        for off in offsets:
            q = self.table[loc + int(off @ self.strides)] - 1
            if index is not None:
                q = index[q]
            hit = np.flatnonzero(q >= 0)
            srcs.append(hit)
            dsts.append(q[hit].astype(np.int64))
        if not srcs:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(srcs), np.concatenate(dsts)


def sparse_components(ijk: np.ndarray, flat: np.ndarray, shape: tuple[int, int, int],
                      lookup: Optional[_Lookup] = None, positions: Optional[np.ndarray] = None,
                      set_size: int = 0) -> tuple[np.ndarray, int]:
    """26-connected components of a sparse voxel set → (labels 1..n per voxel, n).

    ``flat`` must be sorted. ``lookup``/``positions``/``set_size``: the voxels are
    ``positions`` of a larger cached set with that lookup (saves building a table).
    """
    n = flat.size
    if n == 0:
        return np.empty(0, np.int64), 0
    if lookup is None:
        lookup = _Lookup(flat, shape, ijk)
        index = None
    else:
        index = np.full(set_size + 1, -1, dtype=np.int64)
        index[positions] = np.arange(n)
    a, b = lookup.neighbours(ijk, flat, _OFFSETS13, index)
    lab = np.arange(n, dtype=np.int64)
    while a.size:
        la, lb = lab[a], lab[b]
        diff = la != lb
        if not diff.any():
            break
        a, b, la, lb = a[diff], b[diff], la[diff], lb[diff]
        np.minimum.at(lab, np.maximum(la, lb), np.minimum(la, lb))  # hook larger root onto smaller
        while True:  # pointer jumping: every voxel points at its root
            nxt = lab[lab]
            if np.array_equal(nxt, lab):
                break
            lab = nxt
    is_root = lab == np.arange(n)  # converged: every voxel holds its component's smallest position
    new_id = np.cumsum(is_root)
    return new_id[lab], int(new_id[-1])


def _describe_sparse(labels: np.ndarray, n: int, ijk: np.ndarray, adc: np.ndarray, ratio: np.ndarray,
                     reference: Image, keep_labels: bool = False) -> list:
    """Candidates of labelled sparse voxels, largest first (ids 1..m).

    With ``keep_labels`` the list holds (candidate, label) pairs.
    """
    if n == 0:
        return []
    counts = np.bincount(labels, minlength=n + 1)
    sums = np.stack([np.bincount(labels, weights=ijk[:, a].astype(float), minlength=n + 1) for a in range(3)], 1)
    adc_sum = np.bincount(labels, weights=adc.astype(float), minlength=n + 1)
    ratio_sum = np.bincount(labels, weights=ratio.astype(float), minlength=n + 1)
    vox_ml = reference.voxel_volume_mm3 / 1000.0
    out = []
    for k in range(1, n + 1):
        c = counts[k]
        if c == 0:
            continue
        ras = reference.ijk_to_ras(sums[k] / c)
        out.append((Candidate(0, int(c), float(c * vox_ml), (float(ras[0]), float(ras[1]), float(ras[2])),
                              float(adc_sum[k] / c), float(ratio_sum[k] / c)), k))
    out.sort(key=lambda x: (-x[0].voxels, x[0].centroid_ras))
    for i, (cand, _) in enumerate(out, start=1):
        cand.id = i
    return out if keep_labels else [c for c, _ in out]


def _keep_big(labels: np.ndarray, n: int, voxel_mm3: float, min_volume_mm3: float) -> tuple[np.ndarray, int]:
    """Drop components below the volume; relabel the rest 1..m (0 = dropped)."""
    counts = np.bincount(labels, minlength=n + 1)
    big = counts * voxel_mm3 >= min_volume_mm3 - 1e-9
    big[0] = False
    new = np.zeros(n + 1, dtype=np.int64)
    new[big] = np.arange(1, int(big.sum()) + 1)
    return new[labels], int(big.sum())


@dataclass
class _VoxelSet:
    """A sparse set of voxels with their values (flat indices sorted)."""

    flat: np.ndarray
    ijk: np.ndarray
    adc: np.ndarray
    ratio: np.ndarray

    def subset(self, sel: np.ndarray) -> _VoxelSet:
        return _VoxelSet(self.flat[sel], self.ijk[sel], self.adc[sel], self.ratio[sel])
