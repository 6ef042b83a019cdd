"""Pre-annotation on every real case with an expert mask: per-case floors, chronic exclusion (SOOP),
format independence (.mha vs .nii.gz, float header noise).

Floors sit a little below what the defaults achieve (``benchmarks/bench_preannotate_accuracy.py``,
parameters chosen by leave-one-case-out over the expert cases). Targets of issue 16 not yet met are
stated beside the floors.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from aistest_realcases import load_real_case, score_case

from AISAnnotationLib.case import load_case
from AISAnnotationLib.importers import import_loose
from AISAnnotationLib.preannotate import preannotate_case

# case → (Dice ≥, sensitivity ≥, false candidates ≤); measured 0.587/1.00/10, 0.611/0.80/6, 0.851/0.83/0
# (round 2, before the T2-driven veto: 12, 7 and 1 false candidates)
FLOORS = {
    "isles22-case0009": (0.57, 0.93, 10),  # the target of issue 16: ≤ 10 false candidates per case
    "isles22-case0003": (0.59, 0.77, 7),
    "soop-sub3": (0.83, 0.80, 1),
}


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("real") / "bids"
    return {name: load_real_case(shared_data, name, root) for name in FLOORS}


@pytest.fixture(scope="module")
def results(real):
    return {name: preannotate_case(rc.case) for name, rc in real.items()}


@pytest.mark.parametrize("name", list(FLOORS))
def test_real_case_floors(real, results, name):
    rc, r = real[name], results[name]
    s = score_case(rc, r.mask, listed=r.listed)
    dice_floor, sens_floor, fp_cap = FLOORS[name]
    assert s.dice >= dice_floor, s
    assert s.sensitivity >= sens_floor, s
    assert s.false_candidates <= fp_cap, s
    assert all(0.0 < c.confidence < 1.0 for c in r.candidates)
    assert sum(c.voxels for c in r.candidates if c.in_mask) == int(r.mask.sum())
    assert sum(c.voxels for c in r.candidates) == int(r.listed.sum())


def test_median_dice_over_expert_cases(real, results):
    dice = sorted(score_case(real[n], results[n].mask).dice for n in FLOORS)
    assert dice[1] >= 0.59, dice  # measured 0.611


def test_soop_chronic_lesions_are_not_preannotated_as_acute(real, results):
    rc, r = real["soop-sub3"], results["soop-sub3"]
    chronic_only = rc.chronic & ~rc.expert
    assert chronic_only.sum() > 500  # the test has something to find
    assert int((r.mask & chronic_only).sum()) == 0  # nothing painted there
    listed = r.listed & chronic_only
    assert int(listed.sum()) <= 0.02 * int(chronic_only.sum())  # nor pointed at (≤ 2 % of its voxels)
    # the restriction criterion is what keeps them out: their ADC is well above the patient's parenchyma
    assert np.median(rc.case.images["adc"].array[chronic_only]) > 1.3 * r.parenchyma_adc_median
    # the R17 initial lesion (ADC < 620) is reported and lies inside the acute lesion
    init = r.initial_lesion
    assert init.sum() > 0 and (init & rc.expert).sum() >= 0.9 * init.sum()


def _save(arr, affine, path):
    if str(path).endswith(".mha"):
        import SimpleITK as sitk

        from AISAnnotationLib.image import Image
        from AISAnnotationLib.io import image_to_sitk

        sitk.WriteImage(image_to_sitk(Image(array=arr.astype(np.float32), affine=affine)), str(path))
    else:
        nib.save(nib.Nifti1Image(arr.astype(np.float32), affine), str(path))
    return path


def test_same_result_from_mha_and_nifti_and_with_header_noise(real, results, tmp_path):
    case = real["isles22-case0009"].case
    dwi, adc = case.reference, case.images["adc"]
    ref = results["isles22-case0009"].mask
    noisy = dwi.affine.copy()
    noisy[:3, :3] *= 1.0 + 3e-7  # float header noise (e.g. 2.0000006 mm spacing)
    variants = {"mha": (".mha", dwi.affine), "noise": (".nii.gz", noisy)}
    for label, (ext, aff) in variants.items():
        d = tmp_path / label
        d.mkdir()
        files = {"dwi": _save(dwi.array, aff, d / f"dwi{ext}"), "adc": _save(adc.array, aff, d / f"adc{ext}")}
        import_loose(tmp_path / f"bids-{label}", "x", None, files)
        other = load_case(tmp_path / f"bids-{label}", "x", None)
        r = preannotate_case(other)
        assert np.array_equal(r.mask, ref), (label, int((r.mask ^ ref).sum()))
        assert len(r.candidates) == len(results["isles22-case0009"].candidates), label
