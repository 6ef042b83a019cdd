"""Deterministic digital brain phantom for the demo dataset and tests.

Tissue classes (ellipsoidal head model in RAS mm) with physiological values:

=========  ==============  ==========  ==========
tissue     ADC ×10⁻⁶ mm²/s  S0 (b=0)    FLAIR
=========  ==============  ==========  ==========
WM         720             600         500
GM         830             760         640
CSF        3000            1400        60 (nulled)
scalp      350             300         420
acute      420             690         (hyperacute: as tissue; subacute: ×1.45)
=========  ==============  ==========  ==========

DWI S_b = S0 · exp(−b·ADC) with Rician noise (σ = 2 % of WM S0) and a smooth bias
field; scanner ADC written in ×10⁻⁶ (int16) or mm²/s (float32) to exercise unit
detection; FLAIR on its own, finer grid, as on real scanners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import bids
from .diffusion import format_bvals, format_bvecs
from .image import Image
from .io import atomic_write_text, write_json, write_nifti
from .masks import write_mask

TISSUE = {  # name: (ADC e-6, S0, FLAIR)
    "background": (0.0, 0.0, 0.0),
    "scalp": (350.0, 300.0, 420.0),
    "csf": (3000.0, 1400.0, 60.0),
    "gm": (830.0, 760.0, 640.0),
    "wm": (720.0, 600.0, 500.0),
}
LESION_ADC = 420.0
LESION_S0_FACTOR = 1.15
B_VALUE = 1000.0


@dataclass
class Lesion:
    centre_ras: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    kind: str = "acute"  # acute | subacute | shinethrough | chronic

    def contains(self, ras: np.ndarray) -> np.ndarray:
        d = (ras - np.array(self.centre_ras)) / np.array(self.radii_mm)
        return (d ** 2).sum(axis=-1) <= 1.0


@dataclass
class SubjectSpec:
    label: str
    lesions: list[Lesion]
    adc_unit: Optional[str] = "1e-6 mm2/s"  # None: no scanner ADC (derived by the loader)
    rotation_deg: float = 6.0
    seed: int = 0
    notes: list[str] = field(default_factory=list)


DEMO_SUBJECTS = (
    SubjectSpec("01", [Lesion((-38.0, -10.0, 18.0), (14.0, 11.0, 12.0)),
                       Lesion((22.0, 35.0, 30.0), (5.0, 5.0, 6.0))],
                adc_unit="1e-6 mm2/s", rotation_deg=6.0, seed=11,
                notes=["left MCA territory infarct + small right frontal embolus"]),
    SubjectSpec("02", [Lesion((30.0, -40.0, 8.0), (4.0, 4.0, 5.0)),
                       Lesion((25.0, -20.0, 32.0), (6.0, 5.0, 6.0), kind="subacute"),
                       Lesion((-15.0, 10.0, 40.0), (3.5, 3.5, 5.0)),
                       Lesion((10.0, -55.0, -5.0), (5.0, 4.0, 5.0))],
                adc_unit="mm2/s", rotation_deg=-4.0, seed=22,
                notes=["multiple embolic lesions, one subacute (FLAIR positive)"]),
    SubjectSpec("03", [Lesion((-20.0, 20.0, 10.0), (4.5, 4.5, 5.0)),
                       Lesion((28.0, 15.0, 20.0), (7.0, 7.0, 7.0), kind="shinethrough"),
                       Lesion((-30.0, -45.0, 25.0), (6.0, 6.0, 7.0), kind="chronic")],
                adc_unit=None, rotation_deg=3.0, seed=33,
                notes=["lacune; T2 shine-through (not a lesion); chronic infarct (not acute)"]),
)


def _affine(shape: tuple[int, int, int], spacing: tuple[float, float, float], rot_deg: float,
            centre=(0.0, -12.0, 12.0)) -> np.ndarray:
    """LAS-like scanner affine (i → left, as most NIfTI from dcm2niix), tilted about x."""
    t = np.deg2rad(rot_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    axes = rx @ np.diag([-1.0, 1.0, 1.0]) @ np.diag(spacing)
    aff = np.eye(4)
    aff[:3, :3] = axes
    half = (np.array(shape) - 1) / 2.0
    aff[:3, 3] = np.array(centre) - axes @ half
    return aff


def _ras_grid(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), axis=-1)
    return ijk @ affine[:3, :3].T.astype(np.float32) + affine[:3, 3].astype(np.float32)


def _tissue_maps(ras: np.ndarray, centre=(0.0, -12.0, 12.0)) -> dict[str, np.ndarray]:
    p = ras - np.array(centre, dtype=np.float32)
    def ell(a, b, c, off=(0.0, 0.0, 0.0)):
        q = (p - np.array(off, dtype=np.float32)) / np.array([a, b, c], dtype=np.float32)
        return (q ** 2).sum(axis=-1)
    head = ell(72, 92, 68) <= 1
    skull_in = ell(66, 86, 62) <= 1
    brain = ell(63, 83, 59) <= 1
    gm_in = ell(59, 79, 55) <= 1
    vent = (ell(7, 22, 9, (-9, 5, 8)) <= 1) | (ell(7, 22, 9, (9, 5, 8)) <= 1)
    labels = np.zeros(ras.shape[:3], dtype=np.uint8)
    labels[head & ~skull_in] = 1   # scalp
    labels[skull_in & ~brain] = 0  # skull: no signal
    labels[brain] = 2               # CSF rim
    labels[ell(61.5, 81.5, 57.5) <= 1] = 3  # GM
    labels[gm_in] = 4               # WM
    labels[vent] = 2
    return {"labels": labels}


def _bias(ras: np.ndarray) -> np.ndarray:
    return (1.0 + 0.08 * np.sin(ras[..., 0] / 55.0) + 0.06 * np.cos(ras[..., 1] / 70.0)).astype(np.float32)


def _rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    n1 = rng.normal(0, sigma, signal.shape).astype(np.float32)
    n2 = rng.normal(0, sigma, signal.shape).astype(np.float32)
    return np.sqrt((signal + n1) ** 2 + n2 ** 2)


def synthesize(spec: SubjectSpec, dwi_shape=(128, 128, 26), dwi_spacing=(1.75, 1.75, 5.0),
               flair_shape=(256, 256, 26), flair_spacing=(0.875, 0.875, 5.0), n_dirs: int = 3) -> dict[str, object]:
    """Images (arrays + affines) and the true acute-lesion mask for one subject."""
    rng = np.random.default_rng(spec.seed)
    names = ("background", "scalp", "csf", "gm", "wm")
    adc_lut = np.array([TISSUE[n][0] for n in names], dtype=np.float32)
    s0_lut = np.array([TISSUE[n][1] for n in names], dtype=np.float32)
    fl_lut = np.array([TISSUE[n][2] for n in names], dtype=np.float32)

    aff = _affine(dwi_shape, dwi_spacing, spec.rotation_deg)
    ras = _ras_grid(dwi_shape, aff)
    lab = _tissue_maps(ras)["labels"]
    adc = adc_lut[lab]
    s0 = s0_lut[lab]
    parenchyma = lab >= 3
    truth = np.zeros(dwi_shape, dtype=bool)
    for les in spec.lesions:
        inside = les.contains(ras) & parenchyma
        if les.kind in ("acute", "subacute"):
            adc[inside] = LESION_ADC
            s0[inside] *= LESION_S0_FACTOR
            truth |= inside
        elif les.kind == "shinethrough":  # T2-bright, ADC normal-to-high: DWI bright, not a lesion
            s0[inside] *= 1.9
            adc[inside] = 950.0
        elif les.kind == "chronic":  # gliosis: ADC high, DWI iso/low
            adc[inside] = 1600.0
            s0[inside] *= 1.3
    bias = _bias(ras)
    sigma = 0.02 * TISSUE["wm"][1]
    s0_true = s0 * bias
    vols = [_rician(s0_true, sigma, rng)]
    for _ in range(n_dirs):
        vols.append(_rician(s0_true * np.exp(-B_VALUE * adc * 1e-6), sigma, rng))
    dwi4 = np.stack(vols, axis=3).astype(np.float32)

    faff = _affine(flair_shape, flair_spacing, spec.rotation_deg)
    fras = _ras_grid(flair_shape, faff)
    flab = _tissue_maps(fras)["labels"]
    fl = fl_lut[flab]
    fpar = flab >= 3
    for les in spec.lesions:
        inside = les.contains(fras) & fpar
        if les.kind == "subacute":
            fl[inside] *= 1.45
        elif les.kind == "chronic":
            fl[inside] *= 1.8
        elif les.kind == "shinethrough":
            fl[inside] *= 1.5
    fl = _rician(fl * _bias(fras), 0.02 * TISSUE["wm"][2], rng)
    return {"dwi": dwi4, "affine": aff, "adc": adc, "flair": fl, "flair_affine": faff, "truth": truth}


def _dwi_sidecar() -> dict[str, object]:
    return {
        "Manufacturer": "AISAnnotation digital phantom",
        "ManufacturersModelName": "phantom",
        "MagneticFieldStrength": 3.0,
        "MRAcquisitionType": "2D",
        "ScanningSequence": "EP",
        "SequenceVariant": "SK",
        "PulseSequenceType": "SE-EPI",
        "RepetitionTime": 5.0,
        "EchoTime": 0.075,
        "SliceThickness": 5.0,
        "SpacingBetweenSlices": 5.0,
        "AcquisitionMatrixPE": 128,
        "BaseResolution": 128,
        "ReconMatrixPE": 128,
        "PhaseEncodingDirection": "j-",
        "TotalReadoutTime": 0.05,
        "ImageOrientationText": "axial",
        "FlipAngle": 90,
    }


DEMO_DATASET_NAME = "AISAnnotation demo (digital phantom)"


def write_demo_dataset(out: Path, subjects=DEMO_SUBJECTS, session: str = "01") -> list[str]:
    """Write the demo BIDS dataset (raw + phantom ground truth as ``desc-reference`` masks).

    Returns the subject labels written. Deterministic: same bytes of image data every run.
    """
    out = Path(out)
    bids.ensure_raw_dataset(out, name=DEMO_DATASET_NAME, readme=_DEMO_README)
    done = []
    for spec in subjects:
        data = synthesize(spec)
        aff = data["affine"]
        dwi_p = bids.raw_path(out, spec.label, session, "dwi")
        write_nifti(Image(array=data["dwi"], affine=aff), dwi_p)
        n = data["dwi"].shape[3]
        bvals = np.array([0.0] + [B_VALUE] * (n - 1))
        dirs = np.eye(3)[:, : n - 1] if n - 1 <= 3 else np.random.default_rng(0).normal(size=(3, n - 1))
        bvecs = np.concatenate([np.zeros((3, 1)), dirs / np.linalg.norm(dirs, axis=0)], axis=1)
        atomic_write_text(dwi_p.with_name(dwi_p.name.replace(".nii.gz", ".bval")), format_bvals(bvals))
        atomic_write_text(dwi_p.with_name(dwi_p.name.replace(".nii.gz", ".bvec")), format_bvecs(bvecs))
        write_json(bids.sidecar_path(dwi_p), _dwi_sidecar())
        if spec.adc_unit is not None:
            adc_p = bids.raw_path(out, spec.label, session, "adc")
            if spec.adc_unit == "mm2/s":
                arr = (data["adc"] * 1e-6).astype(np.float32)
            else:
                arr = np.round(data["adc"]).astype(np.int16)
            write_nifti(Image(array=arr, affine=aff), adc_p)
            side = {k: v for k, v in _dwi_sidecar().items() if k not in ("PhaseEncodingDirection", "TotalReadoutTime")}
            side.update({"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"], "Units": spec.adc_unit})
            write_json(bids.sidecar_path(adc_p), side)
        fl_p = bids.raw_path(out, spec.label, session, "flair")
        write_nifti(Image(array=np.round(data["flair"]).astype(np.int16), affine=data["flair_affine"]), fl_p)
        write_json(bids.sidecar_path(fl_p), {
            "Manufacturer": "AISAnnotation digital phantom", "MagneticFieldStrength": 3.0,
            "MRAcquisitionType": "2D", "RepetitionTime": 9.0, "EchoTime": 0.1, "InversionTime": 2.4,
            "SliceThickness": 5.0, "SpacingBetweenSlices": 5.0, "AcquisitionMatrixPE": 256,
            "BaseResolution": 256, "ReconMatrixPE": 256,
            "ImageOrientationText": "axial",
        })
        bids.add_participant(out, spec.label, group="phantom", description="; ".join(spec.notes))
        ref = Image(array=np.zeros(data["truth"].shape, np.uint8), affine=aff)
        write_mask(out, spec.label, session, data["truth"], ref, [dwi_p], desc=bids.REFERENCE_DESC,
                   manual=False, extra={"Description": "phantom ground truth (acute lesions only)",
                                        "AISRole": "reference"})
        done.append(spec.label)
    return done


_DEMO_README = """\
AISAnnotation demo dataset (digital phantom)
===========================================

Generated by `ais-annotate demo`: three synthetic subjects with DWI (b=0 and three
b=1000 directions), scanner ADC (×10⁻⁶ mm²/s for sub-01, mm²/s for sub-02, absent
for sub-03 so that it is derived) and T2-FLAIR on a finer grid. Lesions of several
sizes; sub-02 has a subacute (FLAIR-positive) lesion, sub-03 a T2 shine-through
region and a chronic infarct that must not be annotated as acute.
Ground truth: derivatives/lesions/…_desc-reference_mask.nii.gz.
No person is depicted: nothing here identifies anyone.
"""
