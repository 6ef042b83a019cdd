"""The fast brain mask gives exactly the masks of the straightforward method (round 2), kept here as a reference.

The reference runs every step on the whole image grid with SciPy: Otsu foreground, majority-vote
working grid, ``binary_erosion`` / ``label`` / ``binary_dilation`` for the opening and largest
component, ``binary_fill_holes`` with an in-plane structure, and the working-grid erosion. The
library computes the same masks with shifted-view morphology, in the working-grid region's box, and
labels only the background the working grid cannot settle. Checked on synthetic heads (spacings,
partial blocks, Fortran and C layouts) and on every real image in shared/data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from AISAnnotationLib import brain as B
from AISAnnotationLib.image import Image


def _ref_expand(coarse: np.ndarray, factors, shape) -> np.ndarray:
    out = coarse
    for ax, f in enumerate(factors):
        out = np.repeat(out, f, axis=ax)
    return out[:shape[0], :shape[1], :shape[2]]


def _ref_reduce(m: np.ndarray, factors) -> np.ndarray:
    c = [-(-n // f) for n, f in zip(m.shape, factors)]
    votes = np.zeros(c, dtype=np.int64)
    sizes = np.zeros(c, dtype=np.int64)
    for off in np.ndindex(*factors):
        part = m[off[0]::factors[0], off[1]::factors[1], off[2]::factors[2]]
        sl = tuple(slice(0, s) for s in part.shape)
        votes[sl] += part
        sizes[sl] += 1
    return 2 * votes >= sizes


def _ref_erode(m: np.ndarray, spacing, mm: float) -> np.ndarray:
    if not any(B.radius_vox(spacing, mm)):
        return m.copy()
    return ndimage.binary_erosion(m, structure=B.ball(spacing, mm), border_value=1)


def reference_brain_mask(array: np.ndarray, spacing, erode_mm: float = 0.0) -> np.ndarray:
    """The round-2 brain mask, every step on the whole grid (axial = last axis)."""
    fg = np.ascontiguousarray(B.foreground_mask(array))
    if not fg.any():
        return fg
    factors = B.work_factors(spacing)
    csp = tuple(float(s) * f for s, f in zip(spacing, factors))
    core = _ref_erode(_ref_reduce(fg, factors), csp, B.OPENING_MM)
    lab, n = ndimage.label(core, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.zeros(fg.shape, bool)
    big = lab == int(np.argmax(np.bincount(lab.ravel())[1:])) + 1
    region = ndimage.binary_dilation(big, B.ball(csp, B.OPENING_MM)) if any(B.radius_vox(csp, B.OPENING_MM)) else big
    st = np.zeros((3, 3, 3), bool)
    st[:, :, 1] = ndimage.generate_binary_structure(2, 1)
    out = ndimage.binary_fill_holes(_ref_expand(region, factors, fg.shape) & fg, structure=st)
    if erode_mm > 0 and out.any() and any(B.radius_vox(csp, erode_mm)):
        out &= _ref_expand(_ref_erode(_ref_reduce(out, factors), csp, erode_mm), factors, out.shape)
    return out


def _head(shape, spacing, seed: int) -> np.ndarray:
    """A noisy bright brain with dark ventricles and sulci inside a thin scalp, on a dark background."""
    rng = np.random.default_rng(seed)
    g = np.meshgrid(*[(np.arange(n) - n / 2 + 0.5) * s for n, s in zip(shape, spacing)], indexing="ij")
    r = np.sqrt(sum((x / a) ** 2 for x, a in zip(g, (62.0, 76.0, 56.0))))
    img = np.where(r < 0.8, 600.0, 20.0) + rng.normal(0, 40, shape)
    img[(r > 0.9) & (r < 0.97)] = 500.0                       # scalp
    img[(np.abs(g[0]) < 8) & (np.abs(g[1]) < 20) & (np.abs(g[2]) < 15)] = 60.0   # ventricles
    img[(rng.random(shape) < 0.02) & (r < 0.8)] = 30.0        # dark speckle: sulci, small holes
    return np.clip(img, 0, None).astype(np.float32)


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (1.0, 1.0, 1.0), (0.9, 0.9, 5.0), (0.45, 0.45, 5.0),
                                     (1.8, 1.8, 4.8), (1.0, 1.0, 3.0), (0.75, 1.5, 2.5)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_brain_mask_equals_the_reference_on_synthetic_heads(spacing, order):
    shape = tuple(int(round(n / s)) + k for n, s, k in zip((150.0, 180.0, 130.0), spacing, (1, 0, 1)))
    img = _head(shape, spacing, seed=len(shape) + int(10 * spacing[0]))
    arr = np.asfortranarray(img) if order == "F" else img
    for erode_mm in (0.0, 4.0):
        got = B.brain_mask(Image(arr, np.diag([*spacing, 1.0])), erode_mm=erode_mm)
        assert np.array_equal(got, reference_brain_mask(img, spacing, erode_mm)), (spacing, order, erode_mm)
    full = B.brain_mask(Image(arr, np.diag([*spacing, 1.0])))
    assert np.array_equal(B.erode_brain(full, spacing, 4.0), reference_brain_mask(img, spacing, 4.0))


@pytest.mark.parametrize("fp_spec", [((2, 2, 2), 4.0), ((2, 2, 2), 2.0), ((0.9, 0.9, 5.0), 4.0), ((2.0, 1.0, 3.0), 3.0),
                                     ((1.8, 1.8, 4.8), 4.0), "random"])
@pytest.mark.parametrize("density", [0.3, 0.7, 0.95])
def test_shift_morphology_equals_scipy(fp_spec, density):
    rng = np.random.default_rng(int(density * 100))
    if fp_spec == "random":  # asymmetric, with gaps along the fast axis
        fp = rng.random((3, 5, 5)) < 0.5
        fp[1, 2, 2] = True
    else:
        fp = B.ball(*fp_spec)
    m = rng.random((23, 19, 17)) < density
    assert np.array_equal(B.shift_morphology(m, fp, erosion=True), ndimage.binary_erosion(m, fp, border_value=1))
    assert np.array_equal(B.shift_morphology(m, fp, erosion=False), ndimage.binary_dilation(m, fp))


@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 3, 4), (4, 4, 1), (3, 1, 8), (2, 5, 3)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_block_reduce_and_expand_equal_their_definitions(factors, order):
    rng = np.random.default_rng(sum(factors))
    m = rng.random((17, 22, 19)) < 0.5
    arr = np.asfortranarray(m) if order == "F" else m
    got = B._block_reduce(arr, factors)
    assert np.array_equal(got, _ref_reduce(m, factors))
    c = np.asfortranarray(got) if order == "F" else np.ascontiguousarray(got)
    assert np.array_equal(B._block_expand(c, factors, m.shape), _ref_expand(got, factors, m.shape))


def _real_images(data: Path) -> list[tuple[str, np.ndarray, tuple]]:
    from AISAnnotationLib.io import read_image
    from AISAnnotationLib.resample import resample_spacing

    files = sorted((data / "isles22-case0009" / "rawdata").rglob("*.nii.gz"))
    files += [data / "isles22-gc-sample" / f for f in ("dwi.mha", "flair.mha")]
    files += [data / "jhu-ads-subject02" / f for f in ("Subject02_DWI.nii.gz", "Subject02_b0.nii.gz")]
    files += [data / "soop-sub3" / "sub-3" / "dwi" / "sub-3_rec-TRACE_dwi.nii.gz"]
    out = []
    for f in files:
        img = read_image(f)
        out.append((f.name, img, img.spacing))
        if f.name.endswith("_dwi.nii.gz") and "strokecase" in f.name:
            fine = resample_spacing(img, 1.0, "linear")  # the 1 mm grid of the speed benchmark (C order)
            out.append((f.name + "@1mm", fine, fine.spacing))
    return out


def test_brain_mask_equals_the_reference_on_every_real_image(shared_data):
    for name, img, spacing in _real_images(shared_data):
        arr = img.array if img.array.ndim == 3 else np.asarray(img.array, np.float32).mean(axis=3)
        want = reference_brain_mask(np.ascontiguousarray(arr), spacing)
        got = B.brain_mask(img)
        assert got.any() and np.array_equal(got, want), name
        assert np.array_equal(B.erode_brain(got, spacing, 4.0), reference_brain_mask(np.ascontiguousarray(arr),
                                                                                    spacing, 4.0)), name
