"""The candidate list after edits (``AISAnnotationLib.preannotate.remaining``): tiny exact cases."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from AISAnnotationLib.image import Image
from AISAnnotationLib.preannotate import Candidate
from AISAnnotationLib.preannotate.remaining import candidate_labels, remaining_candidates


def _setup():
    """Grid 10×6×3, voxel 2×2×4 mm (16 µl): A = 6 voxels (painted), B = 2 voxels (painted), C = 1 (listed only)."""
    ref = Image(np.zeros((10, 6, 3), np.float32), np.diag([2.0, 2.0, 4.0, 1.0]), name="dwi")
    listed = np.zeros(ref.array.shape, bool)
    listed[1:4, 1:3, 1] = True          # A
    listed[7, 1, 1] = listed[8, 2, 1] = True  # B (26-connected diagonal)
    listed[7, 5, 2] = True              # C
    mask = listed.copy()
    mask[7, 5, 2] = False

    def cand(cid, sel, in_mask=True):
        ijk = np.argwhere(sel)
        return Candidate(cid, len(ijk), len(ijk) * 0.016, tuple(ref.ijk_to_ras(ijk.mean(0))), 500.0, 2.0,
                         in_mask=in_mask)

    a = np.zeros_like(listed)
    a[1:4, 1:3, 1] = True
    b = listed & ~a
    b[7, 5, 2] = False
    c = np.zeros_like(listed)
    c[7, 5, 2] = True
    cands = [cand(1, a), cand(2, b), cand(3, c, in_mask=False)]
    result = SimpleNamespace(listed=listed, mask=mask, candidates=cands)
    return ref, result, mask, [x.to_dict() for x in cands]


CASES = [  # (voxels removed from the applied mask, expected (id, voxels) rows)
    ([], [(1, 6), (2, 2), (3, 1)]),
    ([(7, 1, 1)], [(1, 6), (2, 1), (3, 1)]),           # B partly erased: 1 voxel left
    ([(7, 1, 1), (8, 2, 1)], [(1, 6), (3, 1)]),         # B removed: it leaves the list
    ([(1, 1, 1), (2, 1, 1), (3, 1, 1), (1, 2, 1), (2, 2, 1), (3, 2, 1)], [(2, 2), (3, 1)]),  # A removed
]


@pytest.mark.parametrize("removed, want", CASES)
def test_remaining_candidates(removed, want) -> None:
    ref, result, mask, rows = _setup()
    labels = candidate_labels(result, ref)
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2, 3]
    seg = mask.copy()
    for v in removed:
        seg[v] = False
    out = remaining_candidates(rows, labels, seg, ref)
    assert [(r["id"], r["voxels"]) for r in out] == want
    for r in out:
        if r["id"] == 3:  # listed for review only: never in the segment, stays as listed
            assert r == rows[2]
            continue
        vox = np.argwhere(seg & (labels == r["id"]))
        assert r["volume_ml"] == pytest.approx(len(vox) * 0.016)
        assert r["centroid_ras"] == pytest.approx(ref.ijk_to_ras(vox.mean(0)).tolist(), abs=1e-3)


def test_painted_voxels_outside_every_candidate_are_no_candidate() -> None:
    ref, result, mask, rows = _setup()
    labels = candidate_labels(result, ref)
    seg = mask.copy()
    seg[0, 5, 0] = True
    assert remaining_candidates(rows, labels, seg, ref) == remaining_candidates(rows, labels, mask, ref)
