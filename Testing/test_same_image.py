"""Same image, same result: the .nii.gz and the .mha of one real volume (ISLES'22 case 0009).

The NIfTI stores a 2.00000001 mm spacing (float32 header noise), the .mha written from it by
SimpleITK stores 2 mm. Brain masks, pre-annotations and QC measures must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

from aistest import ISLES_SES, ISLES_SUB


@pytest.fixture(scope="module")
def pair(isles_src, tmp_path_factory):
    import SimpleITK as sitk

    from AISAnnotationLib.io import read_image

    sitk.ProcessObject_SetGlobalWarningDisplay(False)
    tmp = tmp_path_factory.mktemp("mha")
    d = isles_src / "rawdata" / f"sub-{ISLES_SUB}" / f"ses-{ISLES_SES}"
    out = {}
    for seq in ("dwi", "adc", "flair"):
        nii = d / f"sub-{ISLES_SUB}_ses-{ISLES_SES}_{seq}.nii.gz"
        mha = tmp / f"{seq}.mha"
        sitk.WriteImage(sitk.ReadImage(str(nii)), str(mha))
        a, b = read_image(nii, seq), read_image(mha, seq)
        out[seq] = (a, b)
    return out


def test_the_headers_really_differ(pair):
    a, b = pair["dwi"]
    assert a.spacing != b.spacing                    # float noise in the NIfTI header…
    assert np.allclose(a.spacing, b.spacing, rtol=1e-6)
    assert np.array_equal(a.array, b.array)          # …same voxels


@pytest.mark.parametrize("seq,erode_mm", [("dwi", 0.0), ("dwi", 4.0), ("dwi", 6.0), ("flair", 0.0)])
def test_brain_masks_identical(pair, seq, erode_mm):
    from AISAnnotationLib.brain import brain_mask

    a, b = pair[seq]
    ma, mb = brain_mask(a, erode_mm), brain_mask(b, erode_mm)
    assert ma.sum() > 1000
    assert np.array_equal(ma, mb)


def _preannotation(dwi, adc):
    from AISAnnotationLib.brain import brain_mask
    from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters
    from AISAnnotationLib.units import adc_to_internal, detect_adc_unit

    p = PreannotationParameters()
    det = detect_adc_unit(adc.array, brain_mask(dwi))
    ctx = PreannotationContext(adc_to_internal(adc, det), dwi, brain_mask(dwi, erode_mm=p.brain_erode_mm), p)
    return det, ctx.compute(p)


def test_preannotations_identical(pair):
    (da, db), (aa, ab) = pair["dwi"], pair["adc"]
    det_a, ra = _preannotation(da, aa)
    det_b, rb = _preannotation(db, ab)
    assert det_a == det_b
    assert ra.mask.sum() > 0
    assert np.array_equal(ra.mask, rb.mask)
    assert ra.to_dict() == rb.to_dict()


@pytest.mark.parametrize("seq", ["dwi", "flair"])
def test_qc_identical(pair, seq):
    from AISAnnotationLib.brain import brain_mask
    from AISAnnotationLib.qc import acquisition as acq
    from AISAnnotationLib.qc.snr import measure

    res = []
    for im in pair[seq]:
        brain = brain_mask(im)
        m = measure(seq, im.array, im.spacing, brain).as_dict()
        rules = acq.check_sequence(seq, pair[seq][0].meta, acq.Geometry.of(im), brain=brain).as_dict()
        res.append((m, rules))
    assert res[0][0]["snr"] is not None
    assert res[0] == res[1]
