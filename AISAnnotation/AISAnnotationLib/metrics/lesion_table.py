"""Per-lesion match table: which lesions of A and B overlap, and which only one rater drew.

Lesions (26-connected components) of A and B that share at least one voxel are linked (the
ISLES'22 ≥ 1-voxel overlap rule); each group of linked lesions is one row ("finding"):

- ``matched``: lesions of both raters (one row also covers splits and merges, e.g. A1 ↔ B2+B3);
- ``only A`` / ``only B``: a lesion drawn by one rater and not touched by the other.

Rows are ordered by status (matched, only A, only B), then by their first lesion label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .volume import voxel_volume_ml

MATCHED, ONLY_A, ONLY_B = "matched", "only A", "only B"
STATUS_ORDER = (MATCHED, ONLY_A, ONLY_B)


@dataclass(frozen=True)
class LesionMatch:
    """One row of the lesion table.

    Attributes:
        status: ``"matched"``, ``"only A"`` or ``"only B"``.
        a_labels, b_labels: lesion numbers in A and B (1-based, first-voxel order in the grid).
        voxels_a, voxels_b, voxels_both: voxel counts of the group in A, in B and in both.
        volume_a_ml, volume_b_ml: group volumes in ml.
        dice: Dice of A and B restricted to the group's lesions (0.0 for unmatched rows).
        centroid_ijk: centre of mass (voxel index, full grid) of the group's A ∪ B voxels.
        centroid_ras: the same in RAS mm, or ``None`` when no affine was given.
    """

    status: str
    a_labels: tuple[int, ...]
    b_labels: tuple[int, ...]
    voxels_a: int
    voxels_b: int
    voxels_both: int
    volume_a_ml: float
    volume_b_ml: float
    dice: float
    centroid_ijk: tuple[float, float, float]
    centroid_ras: Optional[tuple[float, float, float]]

    @property
    def volume_ml(self) -> float:
        """Largest of the two raters' volumes for this finding (ml)."""
        return max(self.volume_a_ml, self.volume_b_ml)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "a_labels": list(self.a_labels),
            "b_labels": list(self.b_labels),
            "voxels_a": self.voxels_a,
            "voxels_b": self.voxels_b,
            "voxels_both": self.voxels_both,
            "volume_a_ml": self.volume_a_ml,
            "volume_b_ml": self.volume_b_ml,
            "dice": self.dice,
            "centroid_ijk": list(self.centroid_ijk),
            "centroid_ras": None if self.centroid_ras is None else list(self.centroid_ras),
        }


def _find(parent: list[int], x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def lesion_table_from_voxels(coords: tuple[np.ndarray, ...], la: np.ndarray, lb: np.ndarray, na: int, nb: int,
                             spacing: Sequence[float], offset: Sequence[int] = (0, 0, 0),
                             affine: Optional[np.ndarray] = None) -> list[LesionMatch]:
    """Build the table from the voxels of A ∪ B: their indices ``coords`` (as from ``np.nonzero``),
    their A and B lesion labels ``la``/``lb`` (0 = not in that mask) and the lesion counts."""
    if na + nb == 0:
        return []
    # nodes: A lesion k -> k-1, B lesion k -> na+k-1; link overlapping lesions
    parent = list(range(na + nb))
    both = (la > 0) & (lb > 0)
    for key in np.unique(la[both].astype(np.int64) * (nb + 1) + lb[both]):
        pa, pb = divmod(int(key), nb + 1)
        ra, rb = _find(parent, int(pa) - 1), _find(parent, na + int(pb) - 1)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([_find(parent, x) for x in range(na + nb)], dtype=np.int64)
    _, group_of_node = np.unique(roots, return_inverse=True)
    group_of_node = group_of_node.ravel()
    n_groups = int(group_of_node.max()) + 1
    # group of every lesion voxel (an A voxel's group equals its B lesion's group when both)
    node = np.where(la > 0, la.astype(np.int64) - 1, na + lb.astype(np.int64) - 1)
    g = group_of_node[node]
    vox_a = np.bincount(g, weights=(la > 0), minlength=n_groups).astype(np.int64)
    vox_b = np.bincount(g, weights=(lb > 0), minlength=n_groups).astype(np.int64)
    vox_ab = np.bincount(g, weights=both, minlength=n_groups).astype(np.int64)
    n_vox = np.bincount(g, minlength=n_groups).astype(np.float64)
    centroid = np.stack([np.bincount(g, weights=coords[ax], minlength=n_groups) / n_vox + offset[ax]
                         for ax in range(3)], axis=1)
    ras = None
    if affine is not None:
        aff = np.asarray(affine, dtype=float)
        ras = centroid @ aff[:3, :3].T + aff[:3, 3]
    v = voxel_volume_ml(spacing)
    members_of: list[list[int]] = [[] for _ in range(n_groups)]
    for node_id, gi in enumerate(group_of_node.tolist()):
        members_of[gi].append(node_id)
    vox_a, vox_b, vox_ab = vox_a.tolist(), vox_b.tolist(), vox_ab.tolist()
    centroid_l = centroid.tolist()
    ras_l = None if ras is None else ras.tolist()
    rows = []
    for gi, members in enumerate(members_of):
        a_labels = tuple(x + 1 for x in members if x < na)
        b_labels = tuple(x - na + 1 for x in members if x >= na)
        status = MATCHED if a_labels and b_labels else (ONLY_A if a_labels else ONLY_B)
        va, vb, vab = vox_a[gi], vox_b[gi], vox_ab[gi]
        rows.append(LesionMatch(
            status=status, a_labels=a_labels, b_labels=b_labels,
            voxels_a=va, voxels_b=vb, voxels_both=vab,
            volume_a_ml=va * v, volume_b_ml=vb * v,
            dice=2.0 * vab / (va + vb),
            centroid_ijk=tuple(centroid_l[gi]),
            centroid_ras=None if ras_l is None else tuple(ras_l[gi]),
        ))
    rows.sort(key=lambda r: (STATUS_ORDER.index(r.status), (r.a_labels or r.b_labels)[0]))
    return rows


def compute_lesion_table(a: np.ndarray, b: np.ndarray, spacing: Sequence[float] = (1.0, 1.0, 1.0),
                         affine: Optional[np.ndarray] = None) -> list[LesionMatch]:
    """Per-lesion match table of two same-shape binary masks (see the module docstring)."""
    from .voxels import lesion_pair

    lp = lesion_pair(a, b)
    return lesion_table_from_voxels(np.unravel_index(lp.lin, lp.a.shape), lp.la, lp.lb, lp.a.count, lp.b.count,
                                    spacing, lp.pair.offset, affine)
