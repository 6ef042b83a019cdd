"""Pre-submission mask QC: each failure blocks with a specific message (tiny exact cases)."""

from __future__ import annotations

import numpy as np
import pytest

from AISAnnotationLib.image import Image
from AISAnnotationLib.maskqc import check_mask

AFF = np.diag([2.0, 2.0, 4.0, 1.0])
SHAPE = (20, 20, 10)
SHIFT = np.zeros((4, 4))
SHIFT[0, 3] = 0.5  # origin moved half a millimetre


def _ref() -> Image:
    return Image(array=np.zeros(SHAPE, np.float32), affine=AFF)


def _brain() -> np.ndarray:
    b = np.zeros(SHAPE, bool)
    b[3:17, 3:17, 2:8] = True
    return b


def _blob(*extra: tuple[int, int, int]) -> np.ndarray:
    m = np.zeros(SHAPE, np.uint8)
    m[8:11, 8:11, 4:6] = 1
    for ijk in extra:
        m[ijk] = 1
    return m


CASES = [
    # id, array, affine, kwargs, ok, message fragment
    ("good", _blob(), AFF, {}, True, "passed"),
    ("bool dtype", _blob().astype(bool), AFF, {}, True, "passed"),
    ("float 0/1", _blob().astype(np.float32), AFF, {}, True, "passed"),
    ("non-binary", _blob() * 2, AFF, {}, False, "not binary (values 0, 2)"),
    ("label map", _blob() + _blob((1, 1, 1)), AFF, {}, False, "not binary"),
    ("wrong shape", np.zeros((20, 20, 9), np.uint8), AFF, {}, False, "shape (20, 20, 9) differs"),
    ("shifted affine", _blob(), AFF + SHIFT, {}, False, "affine differs from the DWI grid by up to 0.5 mm"),
    ("affine within tolerance", _blob(), AFF + 1e-5, {}, True, "passed"),
    ("empty undeclared", np.zeros(SHAPE, np.uint8), AFF, {}, False, "the mask is empty"),
    ("empty declared", np.zeros(SHAPE, np.uint8), AFF, {"no_visible_lesion": True}, True, "passed"),
    ("declared but drawn", _blob(), AFF, {"no_visible_lesion": True}, False, "'no visible lesion' was declared"),
    ("stray voxel", _blob((14, 14, 3)), AFF, {}, False, "1 component(s) smaller than 3 voxels: 1 vox at RAS (28, 28, 12)"),
    ("stray voxel confirmed", _blob((14, 14, 3)), AFF, {"allow_small_components": True}, True, "passed"),
    ("outside brain", _blob((0, 0, 0), (0, 1, 0), (1, 0, 0)), AFF, {}, False, "3 voxel(s) lie outside the brain"),
    ("within margin", _blob((2, 9, 4), (2, 10, 4), (2, 11, 4)), AFF, {}, True, "passed"),
]


@pytest.mark.parametrize("name, arr, aff, kw, ok, fragment", CASES, ids=[c[0] for c in CASES])
def test_mask_qc_table(name, arr, aff, kw, ok, fragment):
    rep = check_mask(Image(array=arr, affine=aff), _ref(), brain=_brain(), **kw)
    assert rep.ok is ok
    assert fragment in rep.message(), rep.message()


def test_report_lists_components_and_volume():
    rep = check_mask(Image(array=_blob(), affine=AFF), _ref(), brain=_brain())
    assert rep.voxels == 18
    assert rep.volume_ml == pytest.approx(18 * 16 / 1000)
    assert len(rep.components) == 1 and rep.components[0].voxels == 18
    assert rep.components[0].centroid_ras == [18.0, 18.0, 18.0]
    assert rep.outside_brain_voxels == 0


def test_margin_voxels_counted_but_allowed():
    rep = check_mask(Image(array=_blob((2, 9, 4), (2, 10, 4), (2, 11, 4)), affine=AFF), _ref(), brain=_brain())
    assert rep.ok and rep.outside_brain_voxels == 3 and rep.outside_margin_voxels == 0
    assert any("within the 3 mm tolerance" in n for n in rep.notes)


def test_real_expert_mask(isles_bids, isles_case):
    """ISLES'22 case 0009's expert mask: inside the brain, on the DWI grid; its two 2-voxel
    specks are listed (and block until the rater confirms them)."""
    from AISAnnotationLib import bids
    from AISAnnotationLib.io import read_image
    from aistest import ISLES_SES, ISLES_SUB

    m = read_image(bids.lesion_mask_path(isles_bids, ISLES_SUB, ISLES_SES, desc=bids.REFERENCE_DESC))
    rep = check_mask(m, isles_case.reference, brain=isles_case.brain_mask())
    assert not rep.ok and rep.voxels == 523 and len(rep.components) == 18
    assert [c.voxels for c in rep.small_components] == [2, 2]
    assert "2 component(s) smaller than 3 voxels" in rep.message()
    assert rep.outside_margin_voxels == 0
    ok = check_mask(m, isles_case.reference, brain=isles_case.brain_mask(), allow_small_components=True)
    assert ok.ok and ok.notes
