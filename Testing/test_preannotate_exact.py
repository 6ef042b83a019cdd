"""The sparse pre-annotation pieces equal their whole-grid definitions (the round-2 code path, kept here).

The context now works on the brain voxels only, looks neighbours up in a table over the set's padded
box, labels the listed regions and the foci seeds on their voxels, and shares one brain voxel list and
block index with the foci tissue. Each piece is compared with the whole-grid computation it replaced,
on random sets and on real cases (ISLES'22 0009 on its own 2 mm grid, Fortran-ordered, and at 1 mm).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from AISAnnotationLib.brain import brain_mask, erode_brain
from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters, _Lookup
from AISAnnotationLib.preannotate.context import _listed_regions, _median
from AISAnnotationLib.preannotate.foci import block_index
from AISAnnotationLib.preannotate.sparse import _OFFSETS13, _OFFSETS26, sparse_components

P = PreannotationParameters()
ST26 = np.ones((3, 3, 3), bool)


def _ref_listed(core: np.ndarray, foci: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Round 2: core plus the foci components of core ∪ foci touching no core voxel; scipy labels."""
    listed = core.copy()
    if foci.any():
        lab, n = ndimage.label(core | foci, structure=ST26)
        touches = np.zeros(n + 1, bool)
        touches[lab[core]] = True
        listed |= foci & ~touches[lab]
    lab, _ = ndimage.label(listed, structure=ST26)
    flat = np.flatnonzero(listed)
    return flat, lab.reshape(-1)[flat], core.reshape(-1)[flat]


def _check_listed(core: np.ndarray, foci: np.ndarray) -> None:
    flat, labels, n, in_core = _listed_regions(np.flatnonzero(core), np.flatnonzero(foci), core.shape)
    want_flat, want_lab, want_core = _ref_listed(core, foci)
    assert np.array_equal(flat, want_flat) and np.array_equal(in_core, want_core)
    assert n == (int(want_lab.max()) if want_lab.size else 0)
    assert np.array_equal(labels, want_lab)  # same numbering: first voxel in C order


@pytest.mark.parametrize("seed", range(6))
def test_listed_regions_equal_the_whole_grid_labelling(seed):
    rng = np.random.default_rng(seed)
    shape = (14, 11, 9)
    core = rng.random(shape) < 0.04
    foci = (rng.random(shape) < 0.08) & ~core
    foci[0, :, 0] = foci[-1, -1, :] = True  # grid edges and corners: no wrap across rows
    _check_listed(core, foci)
    _check_listed(core, np.zeros(shape, bool))
    _check_listed(np.zeros(shape, bool), foci)


def _median_cases():
    rng = np.random.default_rng(7)
    for n in (1, 2, 4095, 4096, 4097, 10000, 10001, 250000):
        yield (rng.random(n) * 1000 + 1).astype(np.float32)             # distinct values
        yield np.round(rng.random(n) * 10 + 1).astype(np.float32)       # heavy ties
        yield np.exp(rng.normal(size=n) * 3).astype(np.float32)         # a wide range (many bins)
        v = (rng.random(n) * 1000 + 1).astype(np.float32)
        v[: n // 2 - 1] = 7.0                                           # the middle ranks straddle bins
        yield rng.permutation(v)
        yield np.full(n, 3.5, np.float32)
        yield rng.permutation(np.repeat(np.float32([1.0, 2.0]), [n // 2, n - n // 2]))  # rank h opens its bin
    v = (rng.random(9000) * 5).astype(np.float32)
    v[3] = 0.0
    yield v                                                             # not all positive: np.median itself
    v[5] = np.nan
    yield v
    yield rng.random(9001)                                              # float64: np.median itself


@pytest.mark.parametrize("v", list(_median_cases()))
def test_median_equals_numpy(v):
    got, want = _median(v), float(np.median(v))
    assert got == want or (np.isnan(got) and np.isnan(want))


def _brute_neighbours(flat: np.ndarray, shape, offsets, query: np.ndarray) -> set:
    pos = {int(f): i for i, f in enumerate(flat)}
    out = set()
    for p, f in enumerate(query):
        ijk = np.array(np.unravel_index(int(f), shape))
        for off in offsets:
            nb = ijk + off
            if np.all(nb >= 0) and np.all(nb < shape):
                q = pos.get(int(np.ravel_multi_index(tuple(nb), shape)))
                if q is not None:
                    out.add((p, q))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_lookup_neighbours_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    shape = (7, 6, 5)
    flat = np.flatnonzero(rng.random(shape) < 0.3).astype(np.int64)
    flat = np.union1d(flat, [0, int(np.prod(shape)) - 1, 4, 5]).astype(np.int64)  # corners and row ends
    ijk = np.stack(np.unravel_index(flat, shape), axis=1)
    lk = _Lookup(flat, shape, ijk)
    sub = np.flatnonzero(rng.random(flat.size) < 0.5)
    for offsets in (_OFFSETS26, _OFFSETS13):
        a, b = lk.neighbours(ijk[sub], flat[sub], offsets)
        assert set(zip(a.tolist(), b.tolist())) == _brute_neighbours(flat, shape, offsets, flat[sub])
    # through an index: neighbours restricted to a subset
    index = np.full(flat.size + 1, -1, np.int64)
    index[sub] = np.arange(sub.size)
    a, b = lk.neighbours(ijk[sub], flat[sub], _OFFSETS13, index)
    assert set(zip(a.tolist(), b.tolist())) == _brute_neighbours(flat[sub], shape, _OFFSETS13, flat[sub])
    lab, n = sparse_components(ijk, flat, shape)
    ref, m = ndimage.label(np.isin(np.arange(int(np.prod(shape))), flat).reshape(shape), structure=ST26)
    assert n == m and np.array_equal(lab, ref.reshape(-1)[flat])


@pytest.fixture(scope="module")
def contexts(shared_data, tmp_path_factory):
    """(ISLES'22 0009 native 2 mm, and at 1 mm): (adc, dwi, brain, foci brain)."""
    from AISAnnotationLib.case import load_case
    from AISAnnotationLib.importers import import_isles
    from AISAnnotationLib.resample import resample_spacing, resample_to

    root = tmp_path_factory.mktemp("exact") / "bids"
    import_isles(shared_data / "isles22-case0009", root)
    case = load_case(root, "strokecase0009", "0001")
    dwi, adc = case.reference, case.on_dwi_grid("adc")
    fine = resample_spacing(dwi, 1.0, "linear")
    out = []
    for d, a in ((dwi, adc), (fine, resample_to(adc, fine, "linear"))):
        full = brain_mask(d)
        out.append((a, d, erode_brain(full, d.spacing, P.brain_erode_mm), erode_brain(full, d.spacing, 2.0)))
    return out


@pytest.mark.parametrize("which", [0, 1])
def test_context_equals_its_whole_grid_definitions(contexts, which):
    adc_img, dwi_img, brain, foci_brain = contexts[which]
    adc = np.asarray(adc_img.array, np.float32)
    dwi = np.asarray(dwi_img.array, np.float32)
    for fb in (None, foci_brain):
        ctx = PreannotationContext(adc_img, dwi_img, brain, P, foci_brain=fb)
        tissue = brain & (adc >= P.parenchyma_adc_min) & (adc < P.parenchyma_adc_max)
        assert np.array_equal(ctx.tissue_flat, np.flatnonzero(tissue))
        assert ctx.parenchyma_dwi_median == float(np.median(dwi[tissue]))
        assert ctx.parenchyma_adc_median == float(np.median(adc[tissue]))
        ratio = dwi / np.float32(ctx.parenchyma_dwi_median)
        assert np.array_equal(ctx.ratio, ratio)
        assert ctx.refine_intensity_range(P)[1] == max(float(dwi[brain].max()), ctx.refine_intensity_range(P)[0] + 1)
        bright, lookup = ctx.bright_voxels(1.3)
        want = np.flatnonzero(brain & (ratio >= np.float32(1.3)))
        assert np.array_equal(bright.flat, want)
        assert np.array_equal(bright.ratio, ratio.reshape(-1)[want]) and np.array_equal(bright.adc, adc.reshape(-1)[want])
        prev = ctx.preview(620.0, 1.4)
        assert np.array_equal(prev > 0, brain & (ratio >= np.float32(1.4)) & (adc < np.float32(620.0)))
        # foci: the tissue blocks and brain voxels of its own brain mask
        fbm = brain if fb is None else fb
        blocks = ctx.foci.blocks(P)
        ftissue = np.flatnonzero(fbm & (adc >= P.parenchyma_adc_min) & (adc < P.parenchyma_adc_max))
        assert np.array_equal(blocks.flat, ftissue)
        assert np.array_equal(blocks.block, block_index(ftissue, fbm.shape, blocks.factors))
        assert np.array_equal(ctx.foci.brain_voxels()[0], np.flatnonzero(fbm))
        # seeds: labelled on their voxels, the same partition as scipy's labelling of the seed mask
        s = ctx.foci.seeds(P)
        seed_mask = np.zeros(brain.shape, bool)
        seed_mask.reshape(-1)[s.flat] = True
        ref, n = ndimage.label(seed_mask, structure=ST26)
        assert n == len(s.volume_mm3) and np.array_equal(s.lab, ref.reshape(-1)[s.flat])
        # the listed regions of this case's own core and foci
        r = ctx.compute(P)
        _check_listed(r.mask, ctx.foci.mask(P))
