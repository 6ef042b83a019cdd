"""Loading one annotation case (a BIDS session) with every available sequence.

``load_case(root, subject, session)`` returns a :class:`Case` whose images are:

- ``dwi``: the b≈1000 trace (scanner ``_trace`` or the mean over b1000 directions of ``_dwi``);
- ``b0``: mean of the b≈0 volumes of ``_dwi`` (when present);
- ``adc``: ×10⁻⁶ mm²/s (scanner ``_ADC`` with its unit detected, or derived from b0/b1000);
- ``eadc``: scanner ``_expADC`` or derived exp(−b·ADC);
- ``flair``, ``t1w``, ``t2w``: native grids (resample with :meth:`Case.on_dwi_grid`).

The DWI grid is the reference grid of every mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import bids
from .brain import brain_from_foreground, foreground_mask
from .diffusion import TARGET_B, compute_adc, compute_eadc, derived_image, read_bvals, read_bvecs, split_shells
from .errors import InputError
from .image import Image
from .io import read_image
from .resample import resample_to
from .units import UnitDetection, adc_to_internal, detect_adc_unit

DISPLAY_ORDER = ("dwi", "b0", "adc", "eadc", "flair", "t1w", "t2w")


@dataclass
class Case:
    """One subject/session with its sequences (see module doc)."""

    root: Path
    subject: str
    session: Optional[str]
    images: dict[str, Image] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    adc_unit: Optional[UnitDetection] = None
    b_value: float = TARGET_B
    problems: list[str] = field(default_factory=list)
    _on_grid: dict[str, Image] = field(default_factory=dict, repr=False)
    _brain: Optional[np.ndarray] = field(default=None, repr=False)
    _brain_key: Optional[dict[str, Any]] = field(default=None, repr=False)
    _foreground: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def case_id(self) -> str:
        return bids.prefix(self.subject, self.session)

    @property
    def reference(self) -> Image:
        """The DWI b1000 image: the grid of every mask."""
        return self.images["dwi"]

    @property
    def derived(self) -> list[str]:
        return [k for k, im in self.images.items() if im.meta.get("AISDerived")]

    def brain_mask(self) -> np.ndarray:
        """Brain mask on the DWI grid (from b0 when present, else b1000).

        Computed once: kept on the case, and read from ``derivatives/qc`` while the hashes of
        its inputs match the ones stored there by ``ais-annotate qc`` (:mod:`.qc.brain_cache`).
        """
        if self._brain is None:
            from .qc.brain_cache import cached_brain

            self._brain = cached_brain(self, self.brain_key())
            if self._brain is None:  # = brain_mask(b0 or b1000), from the foreground computed once
                fg = self.foreground()
                src = self.images.get("b0") or self.reference
                self._brain = brain_from_foreground(fg, src.spacing) if fg.any() else fg
        return self._brain

    def foreground(self) -> np.ndarray:
        """Voxels of b0 (else b1000) above the Otsu threshold (:func:`.brain.foreground_mask`); computed once."""
        if self._foreground is None:
            self._foreground = foreground_mask((self.images.get("b0") or self.reference).array)
        return self._foreground

    def brain_key(self) -> dict[str, Any]:
        """Cache key of the brain mask: method version and SHA-256 of its input files."""
        if self._brain_key is None:
            from .qc.brain_cache import cache_key

            self._brain_key = cache_key(self)
        return self._brain_key

    def on_dwi_grid(self, key: str, interpolation: str = "linear") -> Image:
        """``images[key]`` on the DWI grid (unchanged when already there); cached."""
        im = self.images[key]
        if im.same_grid(self.reference):
            return im
        if key not in self._on_grid:
            self._on_grid[key] = resample_to(im, self.reference, interpolation)
        return self._on_grid[key]

    def summary(self) -> dict[str, Any]:
        """Plain-JSON description used by ``ais-annotate cases``."""
        seqs = {}
        for k in DISPLAY_ORDER:
            if k in self.images:
                im = self.images[k]
                seqs[k] = {
                    "shape": list(im.shape3),
                    "spacing_mm": [round(s, 4) for s in im.spacing],
                    "on_dwi_grid": im.same_grid(self.reference),
                    "derived": bool(im.meta.get("AISDerived")),
                    "file": str(self.files[k]) if k in self.files else None,
                }
        return {
            "subject": self.subject,
            "session": self.session,
            "sequences": seqs,
            "adc_unit": self.adc_unit.as_dict() if self.adc_unit else None,
            "b_value": self.b_value,
            "problems": list(self.problems),
        }


def find_sequence_files(sdir: Path, subject: str, session: Optional[str]) -> dict[str, Path]:
    """Map sequence key → file in a session folder; two files for one sequence is an error."""
    found: dict[str, Path] = {}
    pre = bids.prefix(subject, session)
    for key, (datatype, suffix) in bids.SEQUENCES.items():
        hits = sorted(
            p for ext in (".nii.gz", ".nii")
            for p in (sdir / datatype).glob(f"{pre}*_{suffix}{ext}")
        )
        if len(hits) > 1:
            names = ", ".join(str(h) for h in hits)
            raise InputError(f"{sdir}: {len(hits)} files claim the {suffix} sequence ({names}); keep one")
        if hits:
            found[key] = hits[0]
    return found


def load_reference(root: Path, subject: str, session: Optional[str] = None) -> Case:
    """The session's diffusion only (DWI b1000 grid, b0): enough for grid checks and the brain mask.

    Much cheaper than :func:`load_case` (no ADC, eADC or anatomical images are read).
    """
    root = Path(root)
    subject = bids.strip_prefix(subject, "sub")
    session = bids.strip_prefix(session, "ses") if session else None
    sdir = bids.session_dir(root, subject, session)
    if not sdir.is_dir():
        raise InputError(f"{sdir}: no such subject/session folder")
    files = find_sequence_files(sdir, subject, session)
    case = Case(root=root, subject=subject, session=session, files=dict(files))
    _load_diffusion(case, files)
    return case


def load_case(root: Path, subject: str, session: Optional[str] = None, adc_unit: str = "auto") -> Case:
    """Load every available sequence of ``sub-<subject>[/ses-<session>]`` from a BIDS root.

    Args:
        adc_unit: "auto" to detect, or a unit name of :data:`units.UNITS` to override.

    Raises:
        InputError / ImageReadError naming the file and the problem.
    """
    root = Path(root)
    subject = bids.strip_prefix(subject, "sub")
    session = bids.strip_prefix(session, "ses") if session else bids.only_session(root, subject)
    sdir = bids.session_dir(root, subject, session)
    if not sdir.is_dir():
        raise InputError(f"{sdir}: no such subject/session folder")
    files = find_sequence_files(sdir, subject, session)
    case = Case(root=root, subject=subject, session=session, files=dict(files))

    _load_diffusion(case, files)
    ref = case.reference
    if "adc" in files:
        adc_raw = read_image(files["adc"], "adc")
        if adc_raw.array.ndim != 3:
            raise InputError(f"{files['adc']}: ADC must be 3D, got shape {adc_raw.shape}")
        if not adc_raw.same_grid(ref):
            case.problems.append(f"{files['adc'].name}: ADC not on the DWI grid; resampled onto it")
            adc_raw = resample_to(adc_raw, ref, "linear")
        # negatives are judged on the Otsu foreground of b0/b1000: no morphology needed for the unit
        tissue = case.foreground()
        det = detect_adc_unit(adc_raw.array, tissue, override=adc_unit, what=str(files["adc"]))
        if det.clipped_negative:
            case.problems.append(
                f"{files['adc'].name}: {det.clipped_negative} negative voxel(s) (background noise) clipped to 0"
            )
        case.adc_unit = det
        case.images["adc"] = adc_to_internal(adc_raw, det)
    elif "b0" in case.images:
        fg = case.brain_mask()
        arr = compute_adc(case.images["b0"].array, ref.array, case.b_value, foreground=fg)
        case.images["adc"] = derived_image(ref, arr, "adc", f"ln(S0/S{case.b_value:g})/{case.b_value:g}·1e6",
                                           ["b0", "dwi"])
        case.images["adc"].meta["Units"] = "1e-6 mm2/s"
    else:
        case.problems.append("no ADC map and no b=0 volume: ADC cannot be derived")

    if "eadc" in files:
        e = read_image(files["eadc"], "eadc")
        case.images["eadc"] = e
    elif "adc" in case.images:
        fg = case.images["adc"].array > 0
        arr = compute_eadc(case.images["adc"].array, case.b_value, foreground=fg)
        case.images["eadc"] = derived_image(ref, arr, "eadc", f"exp(-{case.b_value:g}·ADC)", ["adc"])

    for key in ("flair", "t1w", "t2w"):
        if key in files:
            im = read_image(files[key], key)
            if im.array.ndim != 3:
                raise InputError(f"{files[key]}: expected a 3D image, got shape {im.shape}")
            case.images[key] = im
    return case


def _load_diffusion(case: Case, files: dict[str, Path]) -> None:
    if "dwi" in files:
        p = files["dwi"]
        dwi = read_image(p, "dwi")
        bval_p = p.with_name(p.name.replace(".nii.gz", ".bval").replace(".nii", ".bval"))
        if dwi.array.ndim == 4:
            if not bval_p.is_file():
                raise InputError(f"{p}: 4D DWI without its .bval file ({bval_p.name})")
            bvals = read_bvals(bval_p)
            bvec_p = bval_p.with_suffix(".bvec")
            if bvec_p.is_file():
                read_bvecs(bvec_p, n=bvals.size)
            shells = split_shells(dwi.array, bvals, what=str(p))
            case.b_value = shells.b_value
            if shells.b0 is not None:
                case.images["b0"] = dwi.with_array(shells.b0, name="b0")
            trace = dwi.with_array(shells.b1000, name="dwi")
            trace.meta["AISShellAverage"] = {"b_value": shells.b_value, "volumes": shells.n_b1000}
            case.images["dwi"] = trace
        else:
            case.images["dwi"] = dwi.with_array(np.asarray(dwi.array, dtype=np.float32), name="dwi")
    if "trace" in files:
        tr = read_image(files["trace"], "dwi")
        if tr.array.ndim != 3:
            raise InputError(f"{files['trace']}: a trace image must be 3D, got shape {tr.shape}")
        if "dwi" in case.images and not tr.same_grid(case.images["dwi"]):
            raise InputError(f"{files['trace']}: trace and DWI are on different grids")
        case.images["dwi"] = tr.with_array(np.asarray(tr.array, dtype=np.float32), name="dwi")
        case.files["dwi"] = files["trace"]
        case.b_value = float(tr.meta.get("DiffusionBValue", TARGET_B) or TARGET_B)
        if abs(case.b_value - TARGET_B) > 0.1 * TARGET_B:
            case.problems.append(
                f"{files['trace'].name}: sidecar says b={case.b_value:g}; treated as the b=1000 trace"
            )
            case.b_value = TARGET_B
    if "dwi" not in case.images:
        raise InputError(f"{bids.session_dir(case.root, case.subject, case.session)}: no DWI (_dwi or _trace) found")
    if "b0" in case.images and not case.images["b0"].same_grid(case.images["dwi"]):
        raise InputError("b0 and b1000 are on different grids")
