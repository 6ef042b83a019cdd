"""What dcm2niix wrote for one series → the files the BIDS session gets (consensus R5, R8).

* :class:`SeriesFacts` — what the importer needs from a series' DICOM headers, taken once
  before the headers are de-identified (b-values, derived-image evidence, timing, geometry).
* :func:`candidates` — every dcm2niix output of a series, classified from dcm2niix's own
  report (JSON ImageType, .bval) with the DICOM classification as fallback. Scanner-derived
  volumes that dcm2niix writes next to the acquisition (Philips: the isotropic trace, in a
  file dcm2niix names ``_ADC`` holding the DWI volumes plus the derived ones) are recognised
  by comparing voxels with the main output and imported as ``_trace`` (b>0 isotropic images)
  or ``_ADC`` (ImageType ADC).
* :func:`write_candidate` — the NIfTI (header text scrubbed, voxels as dcm2niix wrote them,
  or the selected volumes of them), its sidecar and, for DWI, .bval/.bvec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..deid import DCM2NIIX_COPIED_TEXT, DCM2NIIX_TEXT_KEYS, scrub_nifti_bytes, scrub_sidecar
from ..errors import AISError
from ..io import atomic_write_bytes, atomic_write_text, read_json, write_json
from .classify import (
    _DERIVED_MAP_TOKENS,
    B_DIFFUSION_MIN,
    Classification,
    _private_value,
    b_values,
    classify_output,
    image_type_tokens,
    timing,
)

NII = ".nii"
"""dcm2niix writes uncompressed NIfTI (``-z n``); the importer compresses once, after scrubbing the header."""
GZIP_LEVEL = 1
"""zlib level of the imported .nii.gz (level 1: ≈ 4 % larger than level 6, ≈ 3× faster)."""


def _gzip(data: bytes) -> bytes:
    import gzip

    return data if data[:2] == b"\x1f\x8b" else gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


QC_KEYS = ("MagneticFieldStrength", "RepetitionTime", "EchoTime", "InversionTime", "SliceThickness",
           "SpacingBetweenSlices")
"""Acquisition parameters every imported sidecar carries (from dcm2niix's JSON, else the DICOM)."""


@dataclass
class SeriesFacts:
    """DICOM facts of one series, collected before de-identification."""

    b_values: list[float] = field(default_factory=list)
    adc_images: int = 0
    isotropic_b: list[float] = field(default_factory=list)   # b>0 images flagged isotropic (Philips 'I')
    params: dict[str, Any] = field(default_factory=dict)     # QC_KEYS from the DICOM (BIDS units)
    acquisition_matrix: Optional[list[int]] = None
    kept_text: set[str] = field(default_factory=set)         # public CS / technical text values (kept in DICOM)

    @classmethod
    def of(cls, headers: list[Any]) -> SeriesFacts:
        f = cls()
        for h in headers:
            bs = b_values(h)
            f.b_values += bs
            if image_type_tokens(h) & _DERIVED_MAP_TOKENS:
                f.adc_images += 1
            direction = _private_value(h, 0x2001, "Philips Imaging DD 001", 0x04)
            if str(direction or "").strip().upper() == "I" and bs and bs[0] > B_DIFFUSION_MIN:
                f.isotropic_b.append(bs[0])
        for h in headers[:1] + headers[-1:]:
            _collect_kept_text(h, f.kept_text)
        h = headers[0]
        tr, te, ti = timing(h)
        for key, v in (("RepetitionTime", tr), ("EchoTime", te), ("InversionTime", ti)):
            if v is not None:
                f.params[key] = v / 1000.0
        for kw, key in (("MagneticFieldStrength", "MagneticFieldStrength"), ("SliceThickness", "SliceThickness"),
                        ("SpacingBetweenSlices", "SpacingBetweenSlices")):
            v = _first_float(h, kw)
            if v is not None:
                f.params[key] = v
        am = h.get("AcquisitionMatrix")
        if am is not None and len(am) == 4:
            f.acquisition_matrix = [int(x) for x in am]
        return f


def _collect_kept_text(ds: Any, out: set[str], depth: int = 0) -> None:
    from .deidentify import TECHNICAL_TEXT

    for el in ds:
        if el.tag.is_private:
            continue
        if el.VR == "SQ":
            if depth < 2:
                for item in el.value[:1]:
                    _collect_kept_text(item, out, depth + 1)
        elif el.VR == "CS" or el.keyword in TECHNICAL_TEXT:
            v = el.value
            out.update(str(x).strip() for x in (v if isinstance(v, (list, tuple)) or
                                                type(v).__name__ == "MultiValue" else [v]) if x not in (None, ""))


def _first_float(ds: Any, kw: str) -> Optional[float]:
    """``kw`` at the top level, else inside the first item of the enhanced functional groups."""
    places = [ds]
    for seq_kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(seq_kw)
        if seq:
            places += [el.value[0] for el in seq[0] if el.VR == "SQ" and len(el.value)]
    for d in places:
        v = d.get(kw)
        if v not in (None, ""):
            try:
                return float(v)
            except (TypeError, ValueError):
                return None
    return None


@dataclass
class Candidate:
    """One importable image made from a series' dcm2niix output."""

    key: str
    cls: Classification
    nifti: Path
    meta: dict[str, Any]
    bvals: Optional[list[float]]
    bvec: Optional[Path]
    n_volumes: int
    volumes: Optional[list[int]] = None   # only these volumes of ``nifti`` (None: the whole file)
    note: str = ""


def _read_bvals(path: Path) -> Optional[list[float]]:
    return [float(x) for x in path.read_text().split()] if path.is_file() else None


def _n_volumes(path: Path) -> tuple[int, tuple[int, ...]]:
    import nibabel as nib

    shape = tuple(int(s) for s in nib.load(str(path)).shape)
    return (shape[3] if len(shape) == 4 else 1), shape


def candidates(out: Path, name: str, dicom: Classification, facts: SeriesFacts) -> tuple[list[Candidate], list[str]]:
    """Classified outputs of one dcm2niix run, and notes on outputs not imported."""
    import nibabel as nib
    import numpy as np

    main = out / f"{name}{NII}"
    if not main.is_file():
        written = ", ".join(sorted(p.name for p in out.glob("*.nii*"))) or "none"
        raise AISError(f"dcm2niix wrote no {name}{NII} (outputs: {written})")
    meta = read_json(main.with_name(f"{name}.json")) if main.with_name(f"{name}.json").is_file() else {}
    bvals = _read_bvals(main.with_name(f"{name}.bval"))
    nvol, shape = _n_volumes(main)
    if bvals is not None and len(bvals) != nvol:
        raise AISError(f"{nvol} volumes but {len(bvals)} b-values")
    cls = classify_output(meta, bvals, nvol, dicom)
    out_list: list[Candidate] = []
    notes: list[str] = []
    bvec = main.with_name(f"{name}.bvec")
    if cls.key is not None:
        out_list.append(Candidate(cls.key, cls, main, meta, bvals, bvec if bvec.is_file() else None, nvol))
    elif dicom.key is None:
        return [], [cls.reason]
    main_data = None
    for extra in sorted(out.glob(f"{name}_*{NII}")):
        emeta_p = extra.with_name(extra.name.replace(NII, ".json"))
        emeta = read_json(emeta_p) if emeta_p.is_file() else {}
        envol, eshape = _n_volumes(extra)
        derived = None
        if envol > nvol and eshape[:3] == shape[:3]:
            if main_data is None:
                main_data = np.asanyarray(nib.load(str(main)).dataobj)
            edata = np.asanyarray(nib.load(str(extra)).dataobj)
            m4 = main_data.reshape(shape[:3] + (nvol,))
            if all(np.array_equal(edata[..., i], m4[..., i]) for i in range(nvol)):
                derived = list(range(nvol, envol))
        if derived is not None:
            if facts.adc_images:
                key, why = "adc", f"{len(derived)} derived volume(s) after the acquisition, ImageType ADC in the DICOM"
            elif facts.isotropic_b:
                key, why = "trace", (f"{len(derived)} derived volume(s) after the acquisition: the scanner's isotropic "
                                     f"trace (b={max(facts.isotropic_b):g} images flagged isotropic in the DICOM)")
            else:
                notes.append(f"{extra.name}: {len(derived)} extra volume(s) of unknown kind, not imported")
                continue
            b = max(facts.isotropic_b) if key == "trace" else None
            out_list.append(Candidate(key, Classification(key, why), extra, dict(meta), [b] if b else None, None,
                                      len(derived), volumes=derived,
                                      note=f"volume(s) {derived} of dcm2niix's {extra.name}"))
            continue
        ecls = classify_output(emeta, _read_bvals(extra.with_name(extra.name.replace(NII, ".bval"))), envol,
                               Classification(None, "no rule matched: extra dcm2niix output"))
        if ecls.key in ("adc", "eadc", "trace"):
            out_list.append(Candidate(ecls.key, ecls, extra, emeta or dict(meta), None, None, envol))
        else:
            notes.append(f"extra dcm2niix output {extra.name} not imported ({ecls.reason})")
    return out_list, notes


def _trace_volume(c: Candidate) -> Optional[list[int]]:
    """For a multi-volume trace (Siemens TRACEW: b0 + trace): the volume(s) of the highest b."""
    if c.key != "trace" or c.volumes is not None or c.n_volumes <= 1 or not c.bvals:
        return c.volumes
    top = max(c.bvals)
    return [i for i, b in enumerate(c.bvals) if b == top][-1:]


def write_candidate(c: Candidate, target: Path, facts: SeriesFacts, tokens: set[str],
                    source: dict[str, Any]) -> str:
    """Write image, sidecar (and .bval/.bvec) of ``c`` at ``target``; returns the shape text."""
    import nibabel as nib
    import numpy as np

    target.parent.mkdir(parents=True, exist_ok=True)
    volumes = _trace_volume(c)
    if volumes is None:
        atomic_write_bytes(target, _gzip(scrub_nifti_bytes(c.nifti.read_bytes())))
        shape = _n_volumes(c.nifti)[1]
    else:
        img = nib.load(str(c.nifti))
        data = np.asanyarray(img.dataobj)
        sel = data[..., volumes[0]] if len(volumes) == 1 else data[..., volumes]
        hdr = img.header.copy()
        new = nib.Nifti1Image(sel, img.affine, hdr)
        new.set_data_dtype(data.dtype)
        tmp = target.with_name(f".{target.name}.tmp.nii")
        nib.save(new, str(tmp))
        atomic_write_bytes(target, _gzip(scrub_nifti_bytes(tmp.read_bytes())))
        tmp.unlink()
        shape = tuple(int(s) for s in sel.shape)
    if c.key != "dwi" and len(shape) == 4 and shape[3] > 1:
        raise AISError(f"{c.key} output has shape {shape}, expected a 3D image")
    if c.key == "dwi" and len(shape) != 4:
        raise AISError(f"diffusion series converted to shape {shape}, expected 4D (b0 + b1000 volumes)")
    spacing = float(nib.load(str(target)).header.get_zooms()[2])
    write_json(target.with_name(target.name.replace(".nii.gz", ".json")),
               sidecar(c, volumes, facts, tokens, shape, source, spacing))
    if c.key == "dwi":
        if not c.bvals:
            raise AISError("dcm2niix wrote no .bval for the diffusion series")
        atomic_write_text(target.with_name(target.name.replace(".nii.gz", ".bval")),
                          c.nifti.with_name(c.nifti.name.replace(NII, ".bval")).read_text())
        if c.bvec is not None:
            atomic_write_text(target.with_name(target.name.replace(".nii.gz", ".bvec")), c.bvec.read_text())
    return "x".join(map(str, shape))


def sidecar(c: Candidate, volumes: Optional[list[int]], facts: SeriesFacts, tokens: set[str],
            shape: tuple[int, ...], source: dict[str, Any], slice_spacing: float) -> dict[str, Any]:
    """dcm2niix's JSON scrubbed, completed with what QC needs (b-values, timing, geometry, matrix).

    A SpacingBetweenSlices neither dcm2niix nor the DICOM states is the image's slice spacing
    (dcm2niix computed it from the slice positions), recorded as such in ``AISAcquisition``.
    """
    meta = scrub_sidecar(c.meta, DCM2NIIX_TEXT_KEYS, tokens)
    for key in DCM2NIIX_COPIED_TEXT & set(meta):
        vals = meta[key] if isinstance(meta[key], list) else [meta[key]]
        if not all(isinstance(v, str) and (v.strip() in facts.kept_text or
                                           set(v.replace("\\", "_").split("_")) <= facts.kept_text) for v in vals):
            del meta[key]
    for key, v in facts.params.items():
        meta.setdefault(key, v)
    derived_spacing = "SpacingBetweenSlices" not in meta
    if derived_spacing:
        meta["SpacingBetweenSlices"] = round(slice_spacing, 4)
    bvals = c.bvals
    if bvals and volumes is not None and c.volumes is None:
        bvals = [bvals[i] for i in volumes]
    if c.key != "dwi":
        weighted = [b for b in (bvals or facts.b_values) if b >= B_DIFFUSION_MIN]
        if c.key in ("trace", "adc", "eadc") and weighted:
            meta["DiffusionBValue"] = max(weighted)
    acq: dict[str, Any] = {"DiffusionBValues": sorted({round(b, 2) for b in (bvals or facts.b_values)}),
                           "ImageMatrix": list(shape[:3])}
    if derived_spacing:
        acq["SpacingBetweenSlicesFrom"] = "image slice positions (not in the DICOM)"
    th, sp = meta.get("SliceThickness"), meta.get("SpacingBetweenSlices")
    if isinstance(th, (int, float)) and isinstance(sp, (int, float)):
        acq["SliceGap"] = round(float(sp) - float(th), 4)
    if facts.acquisition_matrix:
        meta.setdefault("AcquisitionMatrix", facts.acquisition_matrix)
    meta["AISAcquisition"] = acq
    meta["AISSourceSeries"] = dict(source, RecognisedAs=c.key, RecognisedBy=c.cls.reason,
                                   **({"Volumes": c.note} if c.note else {}))
    return meta
