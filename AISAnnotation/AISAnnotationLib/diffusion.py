"""Diffusion-weighted images: b-value tables, shell averaging, derived ADC / eADC.

Formulas (consensus R1): ADC = ln(S0 / S_b) / b  [mm²/s], eADC = S_b / S0 = exp(−b·ADC).
ADC is returned in the internal unit ×10⁻⁶ mm²/s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import InputError
from .image import Image

B0_MAX = 50.0
"""b-values ≤ this (s/mm²) count as b=0 (Philips writes 0.001 … 0.004)."""
SHELL_TOLERANCE = 0.1
"""A volume belongs to the b≈1000 shell when |b − 1000| ≤ 10 %."""
TARGET_B = 1000.0
ADC_MAX_E6 = 5000.0
"""Derived ADC is clipped to [0, 5000] ×10⁻⁶ mm²/s (free water at 37 °C ≈ 3000)."""


def read_bvals(path: Path) -> np.ndarray:
    """Read an FSL-style .bval file (one row of numbers)."""
    try:
        vals = np.array([float(t) for t in Path(path).read_text().split()], dtype=float)
    except ValueError as exc:
        raise InputError(f"{path}: not a b-value file ({exc})") from exc
    if vals.size == 0:
        raise InputError(f"{path}: b-value file is empty")
    if (vals < 0).any() or not np.isfinite(vals).all():
        raise InputError(f"{path}: b-values must be finite and ≥ 0")
    return vals


def read_bvecs(path: Path, n: Optional[int] = None) -> np.ndarray:
    """Read an FSL-style .bvec file (3 rows) → array (3, N)."""
    try:
        rows = [[float(t) for t in line.split()] for line in Path(path).read_text().splitlines() if line.strip()]
    except ValueError as exc:
        raise InputError(f"{path}: not a b-vector file ({exc})") from exc
    if len(rows) != 3 or len({len(r) for r in rows}) != 1:
        raise InputError(f"{path}: a .bvec file needs 3 rows of equal length, found {[len(r) for r in rows]}")
    arr = np.array(rows, dtype=float)
    if n is not None and arr.shape[1] != n:
        raise InputError(f"{path}: {arr.shape[1]} b-vectors for {n} volumes")
    return arr


def format_bvals(bvals: np.ndarray) -> str:
    return " ".join(_fmt(b) for b in bvals) + "\n"


def format_bvecs(bvecs: np.ndarray) -> str:
    return "\n".join(" ".join(_fmt(v) for v in row) for row in bvecs) + "\n"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.6g}"


@dataclass
class Shells:
    """Volumes of a 4D DWI grouped by shell.

    Attributes:
        b0: mean of the b≈0 volumes (None when there are none).
        b1000: mean of the b≈1000 volumes over directions (the trace image).
        b_value: mean b of the b1000 shell (s/mm²).
        n_b0, n_b1000: how many volumes were averaged.
    """

    b0: Optional[np.ndarray]
    b1000: np.ndarray
    b_value: float
    n_b0: int
    n_b1000: int


def split_shells(dwi: np.ndarray, bvals: np.ndarray, what: str = "DWI") -> Shells:
    """Split a 4D DWI [i,j,k,t] into the b0 mean and the b≈1000 trace (arithmetic mean)."""
    if dwi.ndim != 4:
        raise InputError(f"{what}: expected a 4D DWI, got shape {dwi.shape}")
    if dwi.shape[3] != bvals.size:
        raise InputError(
            f"{what}: {dwi.shape[3]} volumes but {bvals.size} b-values in the .bval file"
        )
    is_b0 = bvals <= B0_MAX
    is_b1000 = np.abs(bvals - TARGET_B) <= SHELL_TOLERANCE * TARGET_B
    if not is_b1000.any():
        shells = sorted({round(float(b)) for b in bvals})
        raise InputError(
            f"{what}: no b≈1000 s/mm² shell (b-values found: {shells}); the consensus "
            "requires DWI at b=0 and b=1000"
        )
    data = np.asarray(dwi, dtype=np.float32)
    b0 = data[..., is_b0].mean(axis=3) if is_b0.any() else None
    b1000 = data[..., is_b1000].mean(axis=3)
    return Shells(b0, b1000, float(bvals[is_b1000].mean()), int(is_b0.sum()), int(is_b1000.sum()))


def compute_adc(s0: np.ndarray, sb: np.ndarray, b_value: float = TARGET_B,
                foreground: Optional[np.ndarray] = None) -> np.ndarray:
    """ADC (×10⁻⁶ mm²/s) = ln(S0/S_b)/b · 10⁶, 0 where either signal is ≤ 0 or outside ``foreground``.

    Voxels where S_b > S0 (noise) give 0; the result is clipped to [0, ADC_MAX_E6].
    """
    s0 = np.asarray(s0, dtype=np.float64)
    sb = np.asarray(sb, dtype=np.float64)
    valid = (s0 > 0) & (sb > 0)
    if foreground is not None:
        valid &= foreground
    out = np.zeros(s0.shape, dtype=np.float64)
    out[valid] = np.log(s0[valid] / sb[valid]) / b_value * 1e6
    np.clip(out, 0.0, ADC_MAX_E6, out=out)
    return out.astype(np.float32)


def compute_eadc(adc_e6: np.ndarray, b_value: float = TARGET_B,
                 foreground: Optional[np.ndarray] = None) -> np.ndarray:
    """eADC = exp(−b·ADC) (dimensionless, 0–1); 0 where ADC is 0 (background) or outside ``foreground``."""
    adc = np.asarray(adc_e6, dtype=np.float64)
    valid = adc > 0
    if foreground is not None:
        valid &= foreground
    out = np.zeros(adc.shape, dtype=np.float64)
    out[valid] = np.exp(-b_value * adc[valid] * 1e-6)
    return out.astype(np.float32)


def derived_image(template: Image, array: np.ndarray, name: str, formula: str, sources: list[str]) -> Image:
    """An image on ``template``'s grid marked as derived (not from the scanner)."""
    out = Image(array=array, affine=template.affine.copy(), name=name,
                meta={"AISDerived": True, "AISFormula": formula, "Sources": sources})
    return out
