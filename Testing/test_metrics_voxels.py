"""The fast agreement path: cropping, the lesion-voxel list, the shell search. Exact tiny tables.

Every case is checked against the plain full-volume definitions of ``benchmarks/bench_agreement.py``
(``scipy.ndimage.label`` with 26-connectivity, ``mask ^ binary_erosion(mask)`` surfaces and a
full-volume ``distance_transform_edt``), bit for bit.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy import ndimage as ndi

from AISAnnotationLib.metrics import compare_masks, compute_surface_distances
from AISAnnotationLib.metrics.crop import bounding_box, crop_pair
from AISAnnotationLib.metrics.surface import shell_offsets
from AISAnnotationLib.metrics.voxels import lesion_voxels
from aistest import REPO


def _bench():
    spec = importlib.util.spec_from_file_location("bench_agreement", REPO / "benchmarks" / "bench_agreement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BENCH = _bench()


def vox(shape, *voxels):
    m = np.zeros(shape, dtype=bool)
    for v in voxels:
        m[v] = True
    return m


def cube(shape, lo, hi):
    m = np.zeros(shape, dtype=bool)
    m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return m


S6 = (6, 6, 6)
FULL = np.ones((5, 6, 7), dtype=bool)

# (name, A, B, spacing): lesions on the image border, whole-array masks, one-voxel-thick arrays, empty masks
BORDER_CASES = [
    ("opposite corners", vox(S6, (0, 0, 0)), vox(S6, (5, 5, 5)), (1.0, 1.0, 1.0)),
    ("corner vs its neighbour", vox(S6, (0, 0, 0)), vox(S6, (0, 0, 0), (1, 0, 0)), (0.5, 1.0, 3.0)),
    ("border slabs", cube(S6, (0, 0, 0), (2, 6, 6)), cube(S6, (0, 0, 0), (6, 6, 1)), (1.0, 2.0, 0.7)),
    ("whole array vs its core", FULL, cube(FULL.shape, (1, 1, 1), (4, 5, 6)), (1.0, 1.0, 1.0)),
    ("whole array vs itself", FULL, FULL, (2.0, 2.0, 2.0)),
    ("whole array vs one corner", FULL, vox(FULL.shape, (4, 5, 6)), (0.9, 1.1, 4.0)),
    ("one-voxel-thick array", cube((1, 6, 6), (0, 0, 0), (1, 4, 4)), cube((1, 6, 6), (0, 2, 2), (1, 6, 6)), (5.0, 0.5, 0.5)),
    ("one-voxel-thin along k", cube((6, 6, 1), (0, 0, 0), (6, 3, 1)), vox((6, 6, 1), (5, 5, 0)), (1.0, 1.0, 1.0)),
    ("single voxel array", np.ones((1, 1, 1), bool), np.ones((1, 1, 1), bool), (1.0, 1.0, 1.0)),
    ("border lesion vs empty", vox(S6, (0, 3, 5)), np.zeros(S6, bool), (1.0, 1.0, 1.0)),
    ("empty vs border lesion", np.zeros(S6, bool), vox(S6, (0, 3, 5)), (1.0, 1.0, 1.0)),
    ("both empty", np.zeros(S6, bool), np.zeros(S6, bool), (1.0, 1.0, 1.0)),
    ("far apart, both touching the border", cube((12, 4, 4), (0, 0, 0), (2, 4, 4)), cube((12, 4, 4), (10, 1, 1), (12, 3, 3)),
     (1.0, 1.0, 1.0)),
]


@pytest.mark.parametrize("name,a,b,spacing", BORDER_CASES, ids=[c[0] for c in BORDER_CASES])
def test_border_and_empty_cases_equal_the_full_volume_definitions(name, a, b, spacing):
    r = compare_masks(a, b, spacing=spacing)
    BENCH.check_identical(r, BENCH.reference_isles(a, b, spacing), BENCH.reference_surface(a, b, spacing))
    assert r.voxels_a == int(a.sum()) and r.voxels_b == int(b.sum())
    assert sum(row.voxels_a for row in r.lesions) == r.voxels_a and sum(row.voxels_b for row in r.lesions) == r.voxels_b


@pytest.mark.parametrize("name,a,b,spacing", BORDER_CASES, ids=[c[0] for c in BORDER_CASES])
def test_cropping_is_invisible_embedding_in_a_larger_volume_changes_nothing(name, a, b, spacing):
    """The same masks in a larger empty volume: every metric identical, centroids shifted by the offset."""
    off = (3, 1, 4)
    big_shape = tuple(s + 9 for s in a.shape)
    big_a, big_b = np.zeros(big_shape, bool), np.zeros(big_shape, bool)
    where = tuple(slice(o, o + s) for o, s in zip(off, a.shape))
    big_a[where], big_b[where] = a, b
    small, big = compare_masks(a, b, spacing=spacing), compare_masks(big_a, big_b, spacing=spacing)
    for key in ("dice", "volume_diff_ml", "count_diff", "lesion_f1", "hd95_mm", "assd_mm", "tp", "fp", "fn"):
        assert getattr(big, key) == getattr(small, key), key
    assert [(x.status, x.a_labels, x.b_labels, x.voxels_both) for x in big.lesions] == \
        [(x.status, x.a_labels, x.b_labels, x.voxels_both) for x in small.lesions]
    for x, y in zip(big.lesions, small.lesions):
        assert x.centroid_ijk == pytest.approx(tuple(c + o for c, o in zip(y.centroid_ijk, off)), abs=1e-12)


def test_lesion_table_centroid_of_a_corner_lesion_is_in_full_grid_indices():
    a = vox(S6, (0, 0, 0), (5, 5, 5))
    r = compare_masks(a, vox(S6, (5, 5, 5)), affine=np.diag([2.0, 3.0, 4.0, 1.0]))
    assert [(x.status, x.centroid_ijk, x.centroid_ras) for x in r.lesions] == [
        ("matched", (5.0, 5.0, 5.0), (10.0, 15.0, 20.0)), ("only A", (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))]


# ----------------------------------------------------------------------------- crop
@pytest.mark.parametrize("dtype", [bool, np.uint8, np.int16, np.float32])
def test_crop_pair_any_dtype_margin_and_negative_offset(dtype):
    a = vox((5, 6, 7), (0, 2, 3)).astype(dtype)
    b = (vox((5, 6, 7), (2, 5, 6)) * 2).astype(dtype)          # any non-zero value is lesion
    pair = crop_pair(a, b, margin=1)
    assert pair.offset == (-1, 1, 2) and pair.a.shape == (5, 6, 6) and pair.a.dtype == bool
    assert pair.a[1, 1, 1] and pair.b[3, 4, 4] and pair.a.sum() == pair.b.sum() == 1
    assert not pair.a[0].any() and not pair.b[-1].any()        # the margin is background
    assert bounding_box(b) == (slice(2, 3), slice(5, 6), slice(6, 7))
    assert crop_pair(np.zeros((3, 3, 3), dtype), np.zeros((3, 3, 3), dtype)).empty
    fortran = np.asfortranarray(b)                              # NIfTI readers return Fortran order
    assert bounding_box(fortran) == bounding_box(b) and bounding_box(np.asfortranarray(a)) == bounding_box(a)
    assert bounding_box(b[:, ::-1]) == (slice(2, 3), slice(0, 1), slice(6, 7))   # any other layout too


# ----------------------------------------------------------------------------- lesion voxels
@pytest.mark.parametrize("graph_max_density", [0.0, 1.0])     # SimpleITK scan / neighbour graph
def test_lesion_voxels_labels_and_surface_equal_scipy_on_random_masks(graph_max_density, monkeypatch):
    from AISAnnotationLib.metrics import voxels

    monkeypatch.setattr(voxels, "GRAPH_MAX_DENSITY", graph_max_density)
    rng = np.random.default_rng(21)
    for _ in range(30):
        shape = tuple(int(x) for x in rng.integers(1, 12, 3))
        m = np.pad(rng.random(shape) < rng.uniform(0.05, 0.7), 1)
        v = lesion_voxels(m)
        want_labels, n = ndi.label(m, structure=np.ones((3, 3, 3)))
        surface = m ^ ndi.binary_erosion(m, structure=ndi.generate_binary_structure(3, 1))
        assert np.array_equal(v.lin, np.flatnonzero(m)) and v.count == n
        assert np.array_equal(v.labels, want_labels.ravel()[v.lin])
        assert np.array_equal(v.surface_lin(), np.flatnonzero(surface))
        assert np.array_equal(v.labels_at(np.arange(m.size)), want_labels.ravel())


def row(*runs, length=12):
    """One row along k with the given (start, stop) runs."""
    r = np.zeros(length, bool)
    for a, b in runs:
        r[a:b] = True
    return r


# (name, row i=1 j=1, a neighbouring row, its (di, dj), expected lesion count)
RUN_CASES = [
    ("three runs under one long run", row((1, 11)), row((1, 3), (5, 6), (8, 11)), (0, 1), 1),
    ("middle run only, diagonal row", row((1, 11)), row((5, 6)), (1, 1), 1),
    ("corner contact at the run's end", row((1, 4)), row((4, 7)), (1, -1), 1),   # (1, 1, 3) touches (2, 0, 4)
    ("gap of one voxel along k", row((1, 4)), row((6, 8)), (0, 1), 2),
    ("same row, gap of one", row((1, 4), (5, 8)), row(), (0, 1), 2),
    ("short run bridging two long ones", row((1, 4), (6, 10)), row((4, 6)), (1, 0), 1),
]


@pytest.mark.parametrize("name,r0,r1,delta,count", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_run_linking_table(name, r0, r1, delta, count, monkeypatch):
    from AISAnnotationLib.metrics import voxels

    monkeypatch.setattr(voxels, "GRAPH_MAX_DENSITY", 1.0)     # always the run graph
    m = np.zeros((4, 4, 12), bool)
    m[1, 1] = r0
    m[1 + delta[0], 1 + delta[1]] = r1
    m = np.pad(m, 1)
    v = lesion_voxels(m)
    want, n = ndi.label(m, structure=np.ones((3, 3, 3)))
    assert v.count == n == count and np.array_equal(v.labels, want.ravel()[v.lin])


def test_several_masks_labelled_in_one_graph_keep_their_own_numbers():
    from AISAnnotationLib.metrics.voxels import lesion_voxels_of

    rng = np.random.default_rng(4)
    sparse1 = np.pad(rng.random((20, 20, 20)) < 0.01, 1)
    dense = np.pad(rng.random((6, 6, 6)) < 0.5, 1)                 # above the graph density: SimpleITK scan
    sparse2 = np.pad(rng.random((15, 25, 10)) < 0.012, 1)
    empty = np.zeros((4, 4, 4), bool)
    got = lesion_voxels_of(sparse1, empty, dense, sparse2)
    for m, v in zip((sparse1, empty, dense, sparse2), got):
        want, n = ndi.label(m, structure=np.ones((3, 3, 3)))
        assert v.count == n and np.array_equal(v.labels, want.ravel()[v.lin])


def test_lesion_voxels_table():
    cube5 = np.pad(np.ones((3, 3, 3), bool), 1)                # 27 voxels, only the centre is interior
    v = lesion_voxels(cube5)
    assert (v.size, v.count, int(v.surface.sum())) == (27, 1, 26)
    assert not v.surface[13]                                   # the centre voxel (2, 2, 2)
    assert v.labels_at(np.array([0, 31, 62])).tolist() == [0, 1, 1]
    empty = lesion_voxels(np.zeros((3, 3, 3), bool))
    assert (empty.size, empty.count, empty.labels_at(np.array([4])).tolist()) == (0, 0, [0])
    with pytest.raises(ValueError, match="border"):
        lesion_voxels(vox((3, 3, 3), (0, 1, 1)))


# ----------------------------------------------------------------------------- shell search
@pytest.mark.parametrize("spacing,radius", [
    ((1.0, 1.0, 1.0), 2.0), ((2.000000009, 1.9999999, 3.3), 4.0), ((0.4296875, 0.4296875, 5.5), 0.859375),
    ((1.0, 1.0, 1.0), 0.0),
])
def test_shell_offsets_are_complete_and_sorted(spacing, radius):
    offsets, e, reach = shell_offsets(spacing, radius)
    g = np.stack(np.meshgrid(*[np.arange(-15, 16)] * 3, indexing="ij"), -1).reshape(-1, 3)
    d = g * np.array(spacing)
    want = {tuple(x) for x, s in zip(g.tolist(), (d * d).sum(axis=1)) if s <= radius * radius * (1 + 1e-12)}
    assert {tuple(x) for x in offsets.tolist()} == want
    assert np.all(np.diff(e) >= 0) and e[0] == 0.0 and offsets[0].tolist() == [0, 0, 0]
    assert all(np.abs(offsets).max(axis=0) <= reach)


@pytest.mark.parametrize("a,b,spacing,hd95,assd", [
    # all within the shell (2 voxels): 1 voxel apart along k
    (vox(S6, (2, 2, 2)), vox(S6, (2, 2, 3)), (1.0, 1.0, 1.0), 1.0, 1.0),
    # 3 voxels apart: beyond the shell, found by the full search
    (vox(S6, (2, 2, 0)), vox(S6, (2, 2, 3)), (1.0, 1.0, 1.0), 3.0, 3.0),
    # near ties across the shell's edge: sqrt(4.0000001) beyond, 2 within
    (vox(S6, (0, 0, 0)), vox(S6, (0, 2, 0), (2, 0, 0)), (1.00000005, 1.0, 1.0), 2.0, 2.0),
])
def test_shell_and_full_search_table(a, b, spacing, hd95, assd):
    got = compute_surface_distances(a, b, spacing)
    want = BENCH.reference_surface(a, b, spacing)
    assert (got.hd95_mm, got.assd_mm) == (want["hd95_mm"], want["assd_mm"])
    assert got.hd95_mm == pytest.approx(hd95, rel=1e-6) and got.assd_mm == pytest.approx(assd, rel=1e-6)


# ----------------------------------------------------------------------------- mask check on the compare path
@pytest.mark.parametrize("arr,expected", [
    (np.array([0, 1, 1], np.uint8), True), (np.array([0, 2], np.uint8), False), (np.array([-1, 0], np.int16), False),
    (np.array([True, False]), True), (np.array([0.0, 1.0], np.float32), True), (np.array([0.0, 0.5]), False),
    (np.array([0.0, np.nan]), False), (np.zeros(0, np.uint8), True), (np.array([1, 1], np.int64), True),
])
def test_is_binary_table(arr, expected):
    from AISAnnotationLib.masks import is_binary

    assert is_binary(arr) is expected
    assert is_binary(arr) == (set(np.unique(arr).tolist()) <= {0, 1})   # the definition it replaces
