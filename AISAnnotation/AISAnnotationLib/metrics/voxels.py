"""The lesion voxels of one cropped mask: a sorted list with their lesions and their surface.

Lesion masks are sparse, so every agreement metric works on the list of lesion voxels instead
of the volume. The mask must have background on its border (a crop with a margin of at least
one voxel, :func:`.crop.crop_pair`): then every neighbour of a lesion voxel lies inside the array
and neighbours are found by adding a constant to the C-order linear index.

One look-up table over the array maps each voxel to its list position (-1 for background); it
answers "is this voxel a lesion voxel" for the surface (a voxel with a 6-neighbour outside the
mask, as ``mask ^ binary_erosion(mask)`` in MedPy). Lesions (26-connected) are found on runs of
consecutive voxels along k: runs in neighbouring rows are linked by binary search in the sorted
list and joined by SciPy's sparse-graph connected components (for a dense mask, above
:data:`GRAPH_MAX_DENSITY`, one SimpleITK scan of the array is cheaper and gives the same labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .crop import MaskPair, crop_pair

#: The 6 face neighbours.
FACES_6 = [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)]


def linear_step(offset: tuple[int, int, int], shape: tuple[int, ...]) -> int:
    """Change of the C-order linear index for a voxel offset (di, dj, dk) in an array of ``shape``."""
    return (offset[0] * int(shape[1]) + offset[1]) * int(shape[2]) + offset[2]


@dataclass(frozen=True)
class LesionVoxels:
    """Lesion voxels of a 3D bool array with a background border.

    Attributes:
        shape: shape of the array.
        lin: sorted C-order linear indices of the lesion voxels (int64).
        pos: flat look-up table over the array: list position of each voxel, -1 for background.
        labels: lesion number of each listed voxel, 1..count (26-connected; numbered by each
            lesion's first voxel in C order, as ``scipy.ndimage.label`` and cc3d number them).
        count: number of lesions.
        surface: per listed voxel, True when one of its 6 face neighbours is background.
    """

    shape: tuple[int, int, int]
    lin: np.ndarray
    pos: np.ndarray
    labels: np.ndarray
    count: int
    surface: np.ndarray

    @property
    def size(self) -> int:
        """Number of lesion voxels."""
        return int(self.lin.size)

    def surface_lin(self) -> np.ndarray:
        """Sorted linear indices of the surface voxels."""
        return self.lin[self.surface]

    def labels_at(self, lin: np.ndarray) -> np.ndarray:
        """Lesion number (0 = background) of the voxels with linear indices ``lin``."""
        return np.append(self.labels, 0)[self.pos[lin]]     # position -1 (background) → the appended 0


def _has_border_voxel(m: np.ndarray) -> bool:
    return any(m[idx].any() for idx in (0, -1, (slice(None), 0), (slice(None), -1), (Ellipsis, 0), (Ellipsis, -1)))


def lesion_voxels(mask: np.ndarray) -> LesionVoxels:
    """List, label and find the surface of the lesion voxels of a 3D bool array.

    Raises:
        ValueError: a lesion voxel lies on the array's border (crop with a margin first).
    """
    return lesion_voxels_of(mask)[0]


def _listed(mask: np.ndarray) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray, np.ndarray]:
    """(shape, lin, pos, surface) of one mask."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 3:
        raise ValueError(f"mask must be 3D, got shape {m.shape}")
    shape = (int(m.shape[0]), int(m.shape[1]), int(m.shape[2]))
    lin = np.flatnonzero(m)
    n = lin.size
    if n and _has_border_voxel(m):
        raise ValueError("a lesion voxel lies on the array border; crop with a background margin first")
    pos = np.full(m.size, -1, dtype=np.int32 if n < 2 ** 31 - 1 else np.int64)
    pos[lin] = np.arange(n, dtype=pos.dtype)
    inside = np.ones(n, dtype=bool)
    for off in FACES_6:
        inside &= pos[lin + linear_step(off, shape)] >= 0
    return shape, lin, pos, ~inside


def lesion_voxels_of(*masks: np.ndarray) -> list[LesionVoxels]:
    """:func:`lesion_voxels` of several masks; the sparse ones are labelled together, in one sparse
    graph and one SciPy call (their lesions never touch: their voxels are separate nodes)."""
    listed = [_listed(m) for m in masks]
    labelled: dict[int, tuple[np.ndarray, int]] = {}
    links, starts, run_of, total = [], {}, {}, 0
    for i, (shape, lin, pos, _) in enumerate(listed):
        if lin.size == 0:
            labelled[i] = (np.zeros(0, dtype=np.int64), 0)
        elif lin.size > GRAPH_MAX_DENSITY * pos.size:     # dense: one pass over the array is cheaper
            labelled[i] = _label_scan(lin, pos, shape)
        else:
            run_of[i], own_links = _run_links(lin, shape)
            links.append(own_links + total)
            starts[i] = total
            total += own_links.shape[0]
    if starts:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        k = 2 * len(ROWS_8)                               # links per run: a CSR row of fixed length
        indices = np.concatenate(links).ravel()
        graph = csr_matrix((np.ones(indices.size), indices, np.arange(0, indices.size + 1, k)), shape=(total, total))
        # undirected components, numbered in order of their lowest node: by mask, then by first voxel in C order
        _, labels = connected_components(graph, directed=False)
        for i, start in starts.items():
            own = labels[start:start + int(run_of[i][-1]) + 1].astype(np.int64)
            first = int(own[0])                          # the mask's first run starts its first lesion
            labelled[i] = ((own - (first - 1))[run_of[i]], int(own.max()) - first + 1)
    return [LesionVoxels(shape, lin, pos, labelled[i][0], labelled[i][1], surface)
            for i, (shape, lin, pos, surface) in enumerate(listed)]


#: Below this many voxels labelling runs on one thread (thread start-up dominates on small boxes).
SINGLE_THREAD_VOXELS = 1 << 18


def label_image(m: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected labels (int32 array, numbered by first voxel in C order) and count of a bool array, by
    SimpleITK's ``ConnectedComponent`` (``fullyConnected``: the same relation as cc3d's connectivity 26)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(m.astype(np.uint8))
    f = sitk.ConnectedComponentImageFilter()
    f.SetFullyConnected(True)  # 26-neighbourhood in 3D
    if m.size < SINGLE_THREAD_VOXELS:
        f.SetNumberOfThreads(1)
    labels = sitk.GetArrayFromImage(f.Execute(img))
    labels = labels.view(np.int32) if labels.dtype == np.uint32 else labels.astype(np.int32)
    return labels, int(f.GetObjectCount())


#: Lesion voxels per array voxel above which labelling scans the array (SimpleITK) instead of
#: joining the voxels' neighbour graph (measured crossover ≈ 1.5 %; lesion crops are ≈ 1 %).
GRAPH_MAX_DENSITY = 1 / 64


def _label_scan(lin: np.ndarray, pos: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    m = np.zeros(pos.size, dtype=bool)
    m[lin] = True
    labels, count = label_image(m.reshape(shape))
    return labels.ravel()[lin].astype(np.int64), count


#: (di, dj) of the 8 rows around a row of the array (same i-j plane ± 1, either direction).
ROWS_8 = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]


def _run_links(lin: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Runs of consecutive voxels along k, and the runs each run is 26-connected to.

    Returns ``(run of each voxel, links)``: ``links`` has one row per run and 16 columns, two per
    neighbouring row, holding linked runs (the run itself where there is none). Two runs in
    neighbouring rows touch when one overlaps the other's k-range widened by one voxel. For each
    run and each of its 8 neighbouring rows, the first and the last lesion voxel inside that
    widened range are found by binary search and their runs linked: a run lying strictly between
    them sees only this run in its own widened range (which this run covers), so that link is
    made from its side.
    """
    n = lin.size
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(np.diff(lin), 1, out=new[1:])          # runs never cross rows: the border is background
    starts = np.flatnonzero(new)
    run_of = np.cumsum(new) - 1
    lo, hi = lin[starts] - 1, lin[np.append(starts[1:], n) - 1] + 1
    runs = np.arange(starts.size)[:, None]
    d = np.array([linear_step((di, dj, 0), shape) for di, dj in ROWS_8], dtype=np.int64)
    first = np.searchsorted(lin, (lo[:, None] + d).ravel()).reshape(-1, d.size)            # runs × rows
    last = np.searchsorted(lin, (hi[:, None] + d).ravel(), side="right").reshape(-1, d.size) - 1
    ok = first <= last
    links = np.stack((np.where(ok, run_of[np.minimum(first, n - 1)], runs), np.where(ok, run_of[last], runs)), axis=2)
    return run_of, links.reshape(starts.size, 2 * d.size)


@dataclass(frozen=True)
class LesionPair:
    """Two masks cropped together, their lesion voxels, and the A and B labels of every voxel of A ∪ B.

    Attributes:
        pair: the crop (:class:`.crop.MaskPair`, one-voxel background margin).
        a, b: the lesion voxels of A and of B on the crop.
        lin: sorted linear indices (crop) of the voxels of A ∪ B.
        la, lb: A and B lesion number of each of those voxels (0 = not in that mask).
    """

    pair: MaskPair
    a: LesionVoxels
    b: LesionVoxels
    lin: np.ndarray
    la: np.ndarray
    lb: np.ndarray

    @property
    def n_both(self) -> int:
        """Voxels in both A and B."""
        return int(np.count_nonzero((self.la > 0) & (self.lb > 0)))


def lesion_pair(a: np.ndarray, b: np.ndarray) -> LesionPair:
    """Crop two same-shape masks (non-zero = lesion) once, list, label and surface their lesion voxels once."""
    pair = crop_pair(a, b, margin=1)
    va, vb = lesion_voxels_of(pair.a, pair.b)
    lin = np.flatnonzero(pair.a | pair.b)              # on the crop: cheaper than merging the lists
    return LesionPair(pair, va, vb, lin, va.labels_at(lin), vb.labels_at(lin))
