"""Brain masks from DWI b0 / b1000 intensity (no atlas, no model).

Every size is physical (mm): radii and the working grid are derived from the voxel
spacing with a relative tolerance of :data:`SPACING_RTOL`, so header float noise
(ISLES'22 NIfTI stores 2.00000007 mm where the .mha copy stores 2 mm) never changes
a result. The morphology (opening, largest component, erosion) runs on a working grid
no finer than :data:`WORK_MM` (integer block reduction of fine images, e.g. 1 mm → 2 mm,
0.45 mm FLAIR → 1.8 mm in-plane); thresholding and hole filling stay on the image grid.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .image import Image

OPENING_MM = 4.0
#: morphology runs on a grid whose voxels are at most this size (mm) per axis
WORK_MM = 2.0
#: relative tolerance on voxel sizes (1e-4: float32 header noise is ~1e-7)
SPACING_RTOL = 1e-4
#: bump when the method changes: cached masks made by another version are recomputed
METHOD_VERSION = "brain-2"


def brain_mask(image: Image, erode_mm: float = 0.0) -> np.ndarray:
    """Boolean brain mask of a b0 or DWI image (3D, or 4D averaged over volumes).

    Method: Otsu threshold of the positive voxels (separates tissue from air and
    background noise); an opening by a ball of :data:`OPENING_MM` so the scalp falls
    away; the largest 26-connected component; holes filled in every axial slice
    (ventricles, sulci, dark lesions: one in-plane fill, which contains the 3D fill);
    optional erosion by a ball of ``erode_mm`` (mm) to drop skull-edge and
    partial-volume voxels.
    """
    fg = foreground_mask(image.array)
    if not fg.any():
        return fg
    return brain_from_foreground(fg, image.spacing, erode_mm)


def foreground_mask(array: np.ndarray) -> np.ndarray:
    """Voxels above the Otsu threshold of the positive voxels (no morphology)."""
    arr = np.asarray(array, dtype=np.float32)  # one precision whatever the container stored
    if arr.ndim == 4:
        arr = arr.mean(axis=3)
    flat = arr.ravel(order="K")  # memory order: no copy, fast gather (the threshold ignores the order)
    pos = flat[flat > 0]
    if pos.size == 0:
        return np.zeros(arr.shape, dtype=bool)
    return arr > _otsu(pos)


def brain_from_foreground(fg: np.ndarray, spacing: tuple[float, float, float], erode_mm: float = 0.0) -> np.ndarray:
    """The morphology of :func:`brain_mask` applied to a boolean foreground."""
    fg = np.asarray(fg, dtype=bool)
    if fg.flags.f_contiguous and not fg.flags.c_contiguous:
        # NIfTI arrays are Fortran-ordered: work on the C-ordered transpose (the same voxels and
        # footprints, axes reversed; the slice axis becomes 0), several times faster
        return _brain_from_foreground(fg.T, tuple(spacing)[::-1], erode_mm, 0).T
    return _brain_from_foreground(fg, spacing, erode_mm, 2)


def _brain_from_foreground(fg: np.ndarray, spacing: tuple[float, ...], erode_mm: float, axis: int) -> np.ndarray:
    factors = work_factors(spacing)
    coarse_sp = tuple(float(s) * f for s, f in zip(spacing, factors))
    region = _region(_block_reduce(fg, factors), coarse_sp)
    if region is None:
        return np.zeros(fg.shape, dtype=bool)
    # everything below works in the (image-grid) box of the working-grid region: the mask lies in it,
    # and background outside the mask's own box is connected to the edge, so the hole filling is the same
    cbox = _bbox(region)
    fbox = tuple(slice(c.start * f, min(c.stop * f, n)) for c, f, n in zip(cbox, factors, fg.shape))
    shape = tuple(b.stop - b.start for b in fbox)
    coarse = region[cbox]
    inside = _block_expand(coarse, factors, shape) & fg[fbox]
    # background of the region connected to the slice edge, found on the working grid (the region is a
    # union of whole blocks, so its background's in-plane connectivity is that of the blocks)
    outside = _block_expand(~_fill_box(coarse, axis), factors, shape)
    out = np.zeros(fg.shape, dtype=bool)
    out[fbox] = _fill_holes_outside(inside, outside, axis)
    return erode_brain(out, spacing, erode_mm)


def _bbox(mask: np.ndarray) -> tuple[slice, ...]:
    """Bounding box of a non-empty mask."""
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax))) for ax in range(mask.ndim)]
    return tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)


def _fill_holes_outside(mask: np.ndarray, outside: np.ndarray, axis: int) -> np.ndarray:
    """:func:`fill_holes_in_plane` of ``mask`` (edges: the array's), given ``outside``: background
    voxels already known to be connected in-plane to the edge.

    The rest of the background (few voxels: sulci, ventricles, dark lesions) is labelled in-plane as
    a sparse graph; a component is a hole unless it reaches the edge or touches ``outside``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rest = ~mask
    rest &= ~outside
    flat = np.flatnonzero(rest)
    if flat.size == 0:
        return mask.copy()
    ijk = np.unravel_index(flat, mask.shape)
    strides = [int(np.prod(mask.shape[a + 1:])) for a in range(3)]
    out_flat = outside.reshape(-1)
    reaches = np.zeros(flat.size, dtype=bool)
    src, dst = [], []
    for ax in (a for a in range(3) if a != axis):
        for step in (-1, 1):
            c = ijk[ax] + step
            ok = (c >= 0) & (c < mask.shape[ax])
            reaches |= ~ok  # on the edge
            nb = flat[ok] + step * strides[ax]
            reaches[ok] |= out_flat[nb]
            if step == 1:  # links between background voxels (each pair once)
                q = np.searchsorted(flat, nb)
                q[q == flat.size] = 0
                hit = flat[q] == nb
                src.append(np.flatnonzero(ok)[hit])
                dst.append(q[hit])
    a, b = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(flat.size, flat.size)).tocsr()
    n, comp = connected_components(graph, directed=False)
    reached = np.bincount(comp, weights=reaches, minlength=n) > 0
    out = mask.copy()
    out.reshape(-1)[flat[~reached[comp]]] = True
    return out


def _region(cfg: np.ndarray, coarse_sp: tuple[float, ...]) -> Optional[np.ndarray]:
    """Opening of the working-grid foreground by :data:`OPENING_MM`: its largest 26-connected core, dilated back."""
    from scipy import ndimage

    core = erode(cfg, coarse_sp, OPENING_MM)
    if not core.any():
        return None
    box = _bbox(core)  # labelled in its box: the same components, numbered in the same (C) order
    lab, n = ndimage.label(core[box], structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(lab.ravel())[1:]
    largest = np.zeros(core.shape, dtype=bool)
    largest[box] = lab == (int(np.argmax(sizes)) + 1)
    return dilate(largest, coarse_sp, OPENING_MM)


def erode_brain(brain: np.ndarray, spacing: tuple[float, float, float], erode_mm: float) -> np.ndarray:
    """``brain`` eroded by a ball of ``erode_mm`` on the working grid (as :func:`brain_mask` does)."""
    out = np.array(brain, dtype=bool)
    if erode_mm <= 0 or not out.any():
        return out
    # on the working grid: a coarse voxel survives when its whole ball lies in the (coarse)
    # brain; fine voxels are kept where their coarse voxel survived
    factors = work_factors(spacing)
    coarse_sp = tuple(float(s) * f for s, f in zip(spacing, factors))
    if any(radius_vox(coarse_sp, erode_mm)):
        out &= _block_expand(erode(_block_reduce(out, factors), coarse_sp, erode_mm), factors, out.shape)
    return out


# ----------------------------------------------------------------------------- physical sizes
def radius_vox(spacing: tuple[float, ...], mm: float) -> tuple[int, int, int]:
    """Per-axis radius in voxels of a ball of ``mm`` (0 on axes coarser than the ball).

    ``floor(mm / spacing)`` with a relative tolerance of :data:`SPACING_RTOL`, so 4 mm at a
    spacing of 2.00000007 mm is 2 voxels, as at 2 mm.
    """
    return tuple(int(max(0, np.floor(mm / float(s) * (1 + SPACING_RTOL)))) for s in spacing)  # type: ignore[return-value]


def work_factors(spacing: tuple[float, ...], work_mm: float = WORK_MM) -> tuple[int, int, int]:
    """Integer block factors per axis so that a block is at most ``work_mm`` (within the tolerance)."""
    return tuple(int(max(1, np.floor(work_mm / float(s) * (1 + SPACING_RTOL)))) for s in spacing)  # type: ignore[return-value]


def ball(spacing: tuple[float, ...], mm: float) -> np.ndarray:
    """Footprint of a physical ball: voxel offsets d with Σ(d·spacing)² ≤ (mm·(1+rtol))²."""
    r = radius_vox(spacing, mm)
    g = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    lim = (mm * (1 + SPACING_RTOL)) ** 2
    return sum((gi * float(s)) ** 2 for gi, s in zip(g, spacing)) <= lim


def erode(mask: np.ndarray, spacing: tuple[float, ...], mm: float) -> np.ndarray:
    """Binary erosion by a physical ball of ``mm``; outside the field of view counts as inside
    (a slab that cuts the brain keeps its end slices). The same voxels as
    ``scipy.ndimage.binary_erosion(mask, ball, border_value=1)``."""
    m = np.asarray(mask, dtype=bool)
    if not any(radius_vox(spacing, mm)):
        return m.copy()
    return shift_morphology(m, ball(spacing, mm), erosion=True)


def dilate(mask: np.ndarray, spacing: tuple[float, ...], mm: float) -> np.ndarray:
    """Binary dilation by a physical ball of ``mm`` (the same voxels as ``scipy.ndimage.binary_dilation``)."""
    m = np.asarray(mask, dtype=bool)
    if not any(radius_vox(spacing, mm)):
        return m.copy()
    return shift_morphology(m, ball(spacing, mm), erosion=False)


def shift_morphology(mask: np.ndarray, footprint: np.ndarray, erosion: bool) -> np.ndarray:
    """Binary erosion (outside counts as inside) or dilation (outside counts as outside) of a 3D mask
    by a footprint of odd shape, as AND / OR of shifted copies of the mask.

    Exactly ``scipy.ndimage.binary_erosion(mask, footprint, border_value=1)`` /
    ``binary_dilation(mask, footprint)`` (which reflects the footprint), several times faster: the
    footprint is split into runs along the last axis; the run of each length is one AND/OR of
    shifted views, and each (i, j) offset of the footprint adds one AND/OR of a shifted run.
    """
    m = np.asarray(mask, dtype=bool)
    fp = np.asarray(footprint, dtype=bool)
    if not erosion:
        fp = fp[::-1, ::-1, ::-1]  # dilation: out[x] = OR of mask[x − d] over d in the footprint
    r = [(s - 1) // 2 for s in fp.shape]
    n = m.shape
    if m.ndim != 3 or fp.ndim != 3 or any(s % 2 == 0 for s in fp.shape) or not fp.any():
        raise ValueError(f"need a 3D mask and a non-empty odd 3D footprint, got {m.shape} and {fp.shape}")
    op = np.logical_and if erosion else np.logical_or
    padded = np.full(tuple(a + 2 * b for a, b in zip(n, r)), bool(erosion))
    padded[r[0]:r[0] + n[0], r[1]:r[1] + n[1], r[2]:r[2] + n[2]] = m
    runs: dict[tuple[int, int], np.ndarray] = {}  # (first, last) offset along the last axis → combined
    out: Optional[np.ndarray] = None
    for d0 in range(fp.shape[0]):
        for d1 in range(fp.shape[1]):
            offs = np.flatnonzero(fp[d0, d1])
            if offs.size == 0:
                continue
            if offs.size != offs[-1] - offs[0] + 1:  # not one run: one term per offset
                keys = [(int(t), int(t)) for t in offs]
            else:
                keys = [(int(offs[0]), int(offs[-1]))]
            for key in keys:
                if key not in runs:
                    run = padded[:, :, key[0]:key[0] + n[2]].copy()
                    for t in range(key[0] + 1, key[1] + 1):
                        op(run, padded[:, :, t:t + n[2]], out=run)
                    runs[key] = run
                part = runs[key][d0:d0 + n[0], d1:d1 + n[1]]
                if out is None:
                    out = part.copy()
                else:
                    op(out, part, out=out)
    assert out is not None
    return out


def fill_holes_in_plane(mask: np.ndarray, axis: int = 2) -> np.ndarray:
    """Fill every hole of every slice along ``axis`` (axial: k) of ``mask``: background not
    4-connected in-plane to the edge.

    Equivalent to ``scipy.ndimage.binary_fill_holes`` with an in-plane structure (which also
    contains the 3D fill), computed on the mask's bounding box by one in-plane labelling.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return m.copy()
    box = _bbox(m)
    out = m.copy()
    out[box] = _fill_box(m[box], axis)
    return out


def _fill_box(sub: np.ndarray, axis: int) -> np.ndarray:
    """:func:`fill_holes_in_plane` with the array's own edges as the edge."""
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[(slice(None),) * axis + (1,)] = ndimage.generate_binary_structure(2, 1)
    lab, n = ndimage.label(~sub, structure=structure)
    edge = np.zeros(n + 1, dtype=bool)
    for ax in (a for a in range(3) if a != axis):
        for i in (0, -1):
            edge[np.unique(lab[(slice(None),) * ax + (i,)])] = True
    edge[0] = True  # label 0 is the mask itself
    return sub | ~edge[lab]


# ----------------------------------------------------------------------------- working grid
def _block_reduce(mask: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Majority vote over blocks of ``factors`` voxels (a last partial block votes with what it has)."""
    m = np.asarray(mask, dtype=bool)
    if factors == (1, 1, 1):
        return m
    if m.flags.f_contiguous and not m.flags.c_contiguous:  # strided reads along the fast axis
        return _block_reduce(m.T, tuple(factors)[::-1]).T  # type: ignore[arg-type]
    dtype = np.uint8 if int(np.prod(factors)) < 128 else np.uint16
    votes = np.ascontiguousarray(m).view(np.uint8)  # 0/1 bytes, no copy
    total = np.ones((1, 1, 1), dtype=np.int64)
    for ax in (2, 1, 0):  # the fast axis first: later passes read half as much
        f = factors[ax]
        if f == 1:
            continue
        n = votes.shape[ax]
        full = n // f * f

        def part(start: int, stop: int, step: int = 1, ax: int = ax) -> tuple[slice, ...]:
            return (slice(None),) * ax + (slice(start, stop, step),)

        acc = np.add(votes[part(0, full, f)], votes[part(1, full, f)], dtype=dtype)
        for i in range(2, f):
            np.add(acc, votes[part(i, full, f)], out=acc)
        if full < n:  # the last, partial block
            acc = np.concatenate([acc, votes[part(full, n)].sum(axis=ax, keepdims=True, dtype=dtype)], axis=ax)
        votes = acc
        counts = np.minimum(f, n - np.arange(0, n, f))
        shape = [1, 1, 1]
        shape[ax] = counts.size
        total = total * counts.reshape(shape)
    # 2·votes ≥ total ⇔ votes ≥ ⌈total / 2⌉ (integers)
    return votes >= ((total + 1) // 2).astype(dtype)


def _block_expand(coarse: np.ndarray, factors: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour expansion of a working-grid mask back onto the image grid."""
    if factors == (1, 1, 1):
        return np.asarray(coarse, dtype=bool)
    if coarse.flags.f_contiguous and not coarse.flags.c_contiguous:  # keep the layout (see _block_reduce)
        return _block_expand(coarse.T, tuple(factors)[::-1], tuple(shape)[::-1]).T  # type: ignore[arg-type]
    c = np.ascontiguousarray(coarse, dtype=bool)
    f0, f1, f2 = factors
    if f2 in (2, 4, 8):  # the fast axis: each 0/1 byte becomes f2 equal bytes (one multiply, no loop)
        wide = {2: np.uint16, 4: np.uint32, 8: np.uint64}[f2]
        c = (c.view(np.uint8).astype(wide) * wide(int.from_bytes(b"\x01" * f2, "little"))).view(bool)
        c = c.reshape(coarse.shape[0], coarse.shape[1], -1)
    elif f2 > 1:
        c = np.repeat(c, f2, axis=2)
    big = np.empty((c.shape[0], f0, c.shape[1], f1, c.shape[2]), dtype=bool)
    big[...] = c[:, None, :, None, :]  # the two slow axes: contiguous rows copied by broadcasting
    out = big.reshape(c.shape[0] * f0, c.shape[1] * f1, c.shape[2])
    if out.shape != tuple(shape):
        out = np.ascontiguousarray(out[:shape[0], :shape[1], :shape[2]])
    return out


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu threshold of a 1D sample (on a log scale for heavy right tails)."""
    vmin = values.min()
    x = values.astype(np.float64)
    x -= vmin
    np.log1p(x, out=x)
    hist, edges = np.histogram(x, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m = np.cumsum(hist * centers)
    mu0 = m / np.maximum(w0, 1)
    mu1 = (m[-1] - m) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    t = centers[int(np.argmax(between))]
    return float(np.expm1(t) + vmin)

