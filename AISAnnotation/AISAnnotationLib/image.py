"""The in-memory image: a voxel array plus its voxel→RAS affine and metadata.

Arrays are indexed ``[i, j, k(, t)]`` (NIfTI voxel order, i fastest on disk);
``affine`` maps voxel indices (i, j, k, 1) to RAS millimetres, as in NIfTI and
nibabel. ITK-based formats (.mha, .nrrd) are converted from LPS on reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np


@dataclass
class Image:
    """A 3D (or 4D) image on a physical grid.

    Attributes:
        array: voxel values, indexed [i, j, k(, t)].
        affine: 4×4 voxel→RAS (mm) matrix.
        meta: JSON sidecar metadata (BIDS keys) plus our own provenance keys.
        name: short label, e.g. "dwi", "adc".
        path: file it was read from, if any.
    """

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    path: Optional[Path] = None

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=float)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def shape3(self) -> tuple[int, int, int]:
        s = self.shape
        return (s[0], s[1], s[2])

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along i, j, k."""
        sp = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return (float(sp[0]), float(sp[1]), float(sp[2]))

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def origin(self) -> tuple[float, float, float]:
        """RAS position (mm) of voxel (0, 0, 0)."""
        o = self.affine[:3, 3]
        return (float(o[0]), float(o[1]), float(o[2]))

    @property
    def direction(self) -> np.ndarray:
        """3×3 matrix whose columns are the unit i, j, k axes in RAS."""
        return self.affine[:3, :3] / np.array(self.spacing)[None, :]

    def ijk_to_ras(self, ijk: Any) -> np.ndarray:
        """Voxel index (…, 3) → RAS mm (…, 3)."""
        p = np.asarray(ijk, dtype=float)
        return p @ self.affine[:3, :3].T + self.affine[:3, 3]

    def ras_to_ijk(self, ras: Any) -> np.ndarray:
        """RAS mm (…, 3) → continuous voxel index (…, 3)."""
        inv = np.linalg.inv(self.affine)
        p = np.asarray(ras, dtype=float)
        return p @ inv[:3, :3].T + inv[:3, 3]

    def same_grid(self, other: Image, atol_mm: float = 1e-3) -> bool:
        """True when both images share shape (first 3 dims) and affine within ``atol_mm``."""
        return self.shape3 == other.shape3 and bool(
            np.allclose(self.affine, other.affine, atol=atol_mm, rtol=0)
        )

    def with_array(self, array: np.ndarray, **changes: Any) -> Image:
        """Same grid, new voxels (metadata copied, so edits do not leak back)."""
        return replace(self, array=array, meta=dict(self.meta), **changes)

    def physical_extent(self) -> tuple[np.ndarray, np.ndarray]:
        """RAS bounding box (min, max) of the voxel centres' hull corners."""
        n = np.array(self.shape3) - 1
        corners = np.array(
            [[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], dtype=float
        )
        pts = self.ijk_to_ras(corners)
        return pts.min(axis=0), pts.max(axis=0)
