"""Expected masks of editing actions in the browser, from the view geometry (voxel centres in RAS).

Each action gives a band ``(must, may)`` of flat voxel indices: ``must`` voxels are changed whatever the
rasterisation at the edge does, voxels outside ``may`` never are (one voxel of tolerance at every edge,
half a slice through the plane). :class:`Expect` composes the bands of a sequence of actions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage


class Expect:
    """Voxel grid of the DWI (``affine``, ``shape``) and the running band of the editable segment."""

    def __init__(self, affine: np.ndarray, shape: tuple[int, int, int]) -> None:
        self.affine, self.shape = np.asarray(affine, float), tuple(shape)
        ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
        self.ras = ijk @ self.affine[:3, :3].T + self.affine[:3, 3]
        self.voxel_mm = float(np.linalg.norm(self.affine[:3, 0]))
        self.slice_mm = float(np.linalg.norm(self.affine[:3, 2]))
        self.must = np.zeros(len(self.ras), bool)
        self.may = np.zeros(len(self.ras), bool)

    # ---------------------------------------------------------------- bands of one action
    def _plane(self, geometry: dict) -> tuple[np.ndarray, np.ndarray]:
        """(view x/y pixel coordinates [N, 2], off-plane distance in mm [N]) of every voxel centre."""
        m = np.array(geometry["xy_to_ras"])
        xyz = (np.linalg.inv(m) @ np.c_[self.ras, np.ones(len(self.ras))].T).T[:, :3]
        off = np.abs(xyz[:, 2]) * np.linalg.norm(m[:3, 2])
        return xyz[:, :2], off

    def _layers(self, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return off < 0.5 * self.slice_mm - 0.05, off <= 0.5 * self.slice_mm + 0.05

    def brush(self, geometry: dict, points_xy: list[tuple[float, float]], diameter_mm: float) -> tuple:
        """The sweep of a brush of ``diameter_mm`` along view pixel points (one slice: the 2D brush)."""
        xy, off = self._plane(geometry)
        px_mm = float(np.linalg.norm(np.array(geometry["xy_to_ras"])[:3, 0]))
        pts = np.asarray(points_xy, float)
        dist = np.full(len(xy), np.inf)
        for a, b in zip(pts[:-1], pts[1:]) if len(pts) > 1 else [(pts[0], pts[0])]:
            seg = b - a
            t = np.clip(((xy - a) @ seg) / max(seg @ seg, 1e-12), 0, 1)
            dist = np.minimum(dist, np.linalg.norm(xy - a - np.outer(t, seg), axis=1) * px_mm)
        in_layer, near_layer = self._layers(off)
        r = diameter_mm / 2
        return (dist <= r - self.voxel_mm) & in_layer, (dist <= r + self.voxel_mm) & near_layer

    def polygon(self, geometry: dict, points_xy: list[tuple[float, float]], all_slices: bool) -> tuple:
        """Voxels inside a closed polygon of view pixel points: this slice, or every slice (a prism)."""
        xy, off = self._plane(geometry)
        px_mm = float(np.linalg.norm(np.array(geometry["xy_to_ras"])[:3, 0]))
        pts = np.asarray(points_xy, float)
        inside = np.zeros(len(xy), bool)
        edge = np.full(len(xy), np.inf)
        for a, b in zip(pts, np.roll(pts, -1, axis=0)):
            cross = ((a[1] > xy[:, 1]) != (b[1] > xy[:, 1]))
            xint = a[0] + (xy[:, 1] - a[1]) * (b[0] - a[0]) / np.where(b[1] == a[1], 1e-12, b[1] - a[1])
            inside ^= cross & (xy[:, 0] < xint)
            seg = b - a
            t = np.clip(((xy - a) @ seg) / max(seg @ seg, 1e-12), 0, 1)
            edge = np.minimum(edge, np.linalg.norm(xy - a - np.outer(t, seg), axis=1) * px_mm)
        in_layer, near_layer = self._layers(off)
        if all_slices:
            in_layer = near_layer = np.ones(len(xy), bool)
        return inside & (edge > self.voxel_mm) & in_layer, (inside | (edge <= self.voxel_mm)) & near_layer

    # ---------------------------------------------------------------- composition
    def add(self, band: tuple) -> None:
        self.must, self.may = self.must | band[0], self.may | band[1]

    def remove(self, band: tuple) -> None:
        self.must, self.may = self.must & ~band[1], self.may & ~band[0]

    def count_range(self) -> tuple[int, int]:
        return int(self.must.sum()), int(self.may.sum())

    def islands(self, keep_largest: bool = False, min_voxels: int = 0) -> None:
        """Slicer's Islands (6-connected): keep the largest island, or drop islands < ``min_voxels``.
        The bands must decide it unambiguously (asserted)."""
        labels, n = ndimage.label(self.may.reshape(self.shape))
        labels = labels.reshape(-1)
        must_sizes = np.bincount(labels[self.must], minlength=n + 1)[1:]
        may_sizes = np.bincount(labels[self.may], minlength=n + 1)[1:]
        if keep_largest:
            best = int(np.argmax(must_sizes))
            others = np.delete(may_sizes, best)
            assert must_sizes[best] > others.max(initial=0), "the largest island is ambiguous at this tolerance"
            keep = [best + 1]
        else:
            assert not np.any((must_sizes < min_voxels) & (may_sizes >= min_voxels)), \
                f"island sizes are ambiguous: must {must_sizes.tolist()}, may {may_sizes.tolist()}"
            keep = [i + 1 for i in range(n) if must_sizes[i] >= min_voxels]
        k = np.isin(labels, keep)
        self.must, self.may = self.must & k, self.may & k

    def check(self, saved: np.ndarray, what: str) -> None:
        """``saved`` (boolean [i, j, k]) lies within the band: every must voxel set, nothing outside may."""
        flat = np.asarray(saved, bool).reshape(-1)
        lost, extra = int((self.must & ~flat).sum()), int((flat & ~self.may).sum())
        if lost or extra:
            import os
            if os.environ.get("AIS_WEB_DUMP"):
                np.savez(os.environ["AIS_WEB_DUMP"], must=self.must, may=self.may, saved=flat, ras=self.ras)
        assert lost == 0 and extra == 0, (f"{what}: {lost} voxels that must be set are not, {extra} set outside the "
                                          f"band (must {int(self.must.sum())}, may {int(self.may.sum())}, "
                                          f"saved {int(flat.sum())})")


def page_to_view_xy(geometry: dict, box: dict, px: float, py: float) -> tuple[float, float]:
    """View pixel coordinates (VTK: origin bottom-left) of a page point in the view image ``box``."""
    return ((px - box["x"]) * geometry["width"] / box["width"],
            geometry["height"] - (py - box["y"]) * geometry["height"] / box["height"])


def view_xy_to_page(geometry: dict, box: dict, x: float, y: float) -> tuple[float, float]:
    return (box["x"] + x * box["width"] / geometry["width"],
            box["y"] + (geometry["height"] - y) * box["height"] / geometry["height"])


def shifted(geometry: dict, mm: float) -> dict[str, Any]:
    """``geometry`` of the same view moved ``mm`` along its normal (a slice-slider step)."""
    m = np.array(geometry["xy_to_ras"])
    n = m[:3, 2] / np.linalg.norm(m[:3, 2])
    m[:3, 3] += n * mm
    return {**geometry, "xy_to_ras": m.tolist()}
