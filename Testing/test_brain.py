"""Brain mask: physical sizes with a tolerance, the in-plane hole fill, the working grid (table-driven)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from AISAnnotationLib import brain as B


@pytest.mark.parametrize("spacing,mm,expected", [
    ((2.0, 2.0, 2.0), 4.0, (2, 2, 2)),
    ((2.00000007, 1.99999993, 2.0000001), 4.0, (2, 2, 2)),   # ISLES'22 NIfTI header noise
    ((2.0004, 2.0, 2.0), 4.0, (1, 2, 2)),                      # a real 0.02 % difference is not noise
    ((0.449, 0.449, 5.0), 4.0, (8, 8, 0)),
    ((1.0, 1.0, 1.0), 0.5, (0, 0, 0)),
])
def test_radius_vox_is_physical_with_tolerance(spacing, mm, expected):
    assert B.radius_vox(spacing, mm) == expected


@pytest.mark.parametrize("spacing,expected", [
    ((1.0, 0.9999999999999999, 1.0), (2, 2, 2)),
    ((2.0000000092, 2.0000000112, 1.99999999), (1, 1, 1)),
    ((0.44921872656, 0.44921874733, 4.9999995), (4, 4, 1)),
    ((1.796875, 1.796875, 4.8), (1, 1, 1)),
])
def test_work_factors(spacing, expected):
    assert B.work_factors(spacing) == expected


def test_ball_is_physical():
    b = B.ball((2.0, 2.0, 2.0), 4.0)
    assert b.shape == (5, 5, 5) and b[2, 2, 2] and b[0, 2, 2] and b[1, 1, 1]
    assert not b[0, 1, 2]  # (4, 2, 0) mm is 4.47 mm away
    assert B.ball((2.0, 2.0, 2.0), 4.0).sum() == B.ball((2.00000007, 1.9999999, 2.0), 4.0).sum()


def _random_mask(seed: int, shape=(40, 36, 9)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.binary_opening(rng.random(shape) > 0.45, np.ones((2, 2, 1), bool))


@pytest.mark.parametrize("seed", range(6))
def test_in_plane_fill_equals_scipy_fill_with_in_plane_structure(seed):
    m = _random_mask(seed)
    st = np.zeros((3, 3, 3), bool)
    st[:, :, 1] = ndimage.generate_binary_structure(2, 1)
    expected = ndimage.binary_fill_holes(m, structure=st)
    assert np.array_equal(B.fill_holes_in_plane(m), expected)
    # and it contains the 3D fill (the old code ran both)
    assert not (ndimage.binary_fill_holes(m) & ~expected).any()


def test_fill_of_a_ring_and_an_open_ring():
    m = np.zeros((9, 9, 3), bool)
    m[2:7, 2:7, 1] = True
    m[4, 4, 1] = False          # a closed hole: filled
    m[0:3, 5, 2] = True         # nothing to fill
    out = B.fill_holes_in_plane(m)
    assert out[4, 4, 1] and out.sum() == m.sum() + 1


@pytest.mark.parametrize("shape,factors", [((10, 10, 4), (2, 2, 1)), ((11, 7, 5), (2, 3, 2)), ((9, 9, 9), (4, 4, 1))])
def test_block_reduce_is_a_majority_vote(shape, factors):
    m = _random_mask(3, shape)
    got = B._block_reduce(m, factors)
    c = [-(-n // f) for n, f in zip(shape, factors)]
    assert got.shape == tuple(c)
    for idx in np.ndindex(*c):
        sl = tuple(slice(i * f, (i + 1) * f) for i, f in zip(idx, factors))
        block = m[sl]
        assert got[idx] == (2 * block.sum() >= block.size)
    back = B._block_expand(got, factors, shape)
    assert back.shape == shape


def test_brain_mask_of_a_synthetic_head():
    """A bright ellipsoid brain inside a thin bright scalp: the scalp is cut off, the dark ventricle filled."""
    from AISAnnotationLib.image import Image

    x, y, z = np.ogrid[:60, :60, :30]
    r2 = ((x - 30) / 20.0) ** 2 + ((y - 30) / 24.0) ** 2 + ((z - 15) / 11.0) ** 2
    arr = np.where(r2 <= 1, 100.0, 1.0)
    shell = (r2 > 1.25) & (r2 <= 1.4)
    arr[shell] = 90.0                                   # scalp, separated by a dark skull gap
    vent = ((x - 30) / 4.0) ** 2 + ((y - 30) / 6.0) ** 2 + ((z - 15) / 3.0) ** 2 <= 1
    arr[vent] = 10.0                                    # dark CSF inside
    img = Image(arr.astype(np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    m = B.brain_mask(img)
    assert not (m & shell).any()
    assert m[vent].all()
    assert (m == ((r2 <= 1) | vent)).mean() > 0.995
    eroded = B.brain_mask(img, erode_mm=6.0)
    assert eroded.sum() < m.sum() and not (eroded & ~m).any()


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (0.45, 0.45, 5.0), (1.0, 1.0, 1.0)])
def test_fortran_ordered_input_gives_the_same_mask(spacing):
    """NIfTI arrays come Fortran-ordered; the fast path on the transpose must not change one voxel."""
    from AISAnnotationLib.image import Image

    rng = np.random.default_rng(7)
    x, y, z = np.ogrid[:64, :56, :20]
    r2 = ((x - 32) / 24.0) ** 2 + ((y - 28) / 20.0) ** 2 + ((z - 10) / 8.0) ** 2
    arr = np.where(r2 <= 1, 100.0, 5.0) + rng.normal(0, 8, r2.shape)
    arr[np.broadcast_to(((x - 30) / 5.0) ** 2 + ((y - 28) / 4.0) ** 2 <= 1, r2.shape)] = 10.0  # dark, every slice
    aff = np.diag(list(spacing) + [1.0])
    c = B.brain_mask(Image(np.ascontiguousarray(arr, np.float32), aff), erode_mm=2.0)
    f = B.brain_mask(Image(np.asfortranarray(arr, np.float32), aff), erode_mm=2.0)
    assert c.flags.c_contiguous and f.flags.f_contiguous
    assert c.sum() > 1000 and np.array_equal(c, f)


@pytest.mark.parametrize("seed", range(3))
def test_in_plane_fill_along_any_axis(seed):
    m = _random_mask(seed)
    for axis in (0, 1):
        moved = np.moveaxis(m, 2, axis)
        assert np.array_equal(B.fill_holes_in_plane(moved, axis), np.moveaxis(B.fill_holes_in_plane(m), 2, axis))


@pytest.mark.parametrize("shape,factors", [((11, 7, 5), (2, 3, 2)), ((18, 20, 6), (4, 4, 1))])
def test_block_reduce_and_expand_keep_fortran_layout(shape, factors):
    m = _random_mask(5, shape)
    f = np.asfortranarray(m)
    got = B._block_reduce(f, factors)
    assert np.array_equal(got, B._block_reduce(m, factors))
    back = B._block_expand(np.asfortranarray(got), factors, shape)
    assert back.flags.f_contiguous and np.array_equal(back, B._block_expand(np.ascontiguousarray(got), factors, shape))
