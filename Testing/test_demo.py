from __future__ import annotations

import hashlib

import numpy as np

from AISAnnotationLib import bids
from AISAnnotationLib.case import load_case
from AISAnnotationLib.io import read_image
from AISAnnotationLib.phantom import DEMO_SUBJECTS, synthesize
from aistest import bids_errors


def test_demo_is_validator_clean(demo_root):
    assert bids_errors(demo_root) == []


def test_demo_cases_load_with_expected_units_and_derivations(demo_root):
    units = {}
    for sub, ses in bids.find_sessions(demo_root):
        c = load_case(demo_root, sub, ses)
        units[sub] = c.adc_unit.unit if c.adc_unit else None
        brain = c.brain_mask()
        wm_like = np.median(c.images["adc"].array[brain])
        assert 650 <= wm_like <= 900
        assert c.images["flair"].shape3 == (256, 256, 26) and not c.images["flair"].same_grid(c.reference)
        truth = read_image(bids.lesion_mask_path(demo_root, sub, ses, desc=bids.REFERENCE_DESC)).array > 0
        assert truth.any()
        # acute lesions: low ADC, bright DWI relative to the brain
        assert np.median(c.images["adc"].array[truth]) < 620
        assert np.median(c.reference.array[truth]) > 1.3 * np.median(c.reference.array[brain & ~truth])
    assert units == {"01": "1e-6 mm2/s", "02": "mm2/s", "03": None}
    c3 = load_case(demo_root, "03", "01")
    assert set(c3.derived) == {"adc", "eadc"}


def test_phantom_is_deterministic():
    a = synthesize(DEMO_SUBJECTS[0])
    b = synthesize(DEMO_SUBJECTS[0])
    for k in ("dwi", "flair", "truth"):
        assert hashlib.sha256(a[k].tobytes()).hexdigest() == hashlib.sha256(b[k].tobytes()).hexdigest()


def test_demo_lesion_sizes_vary(demo_root):
    vols = []
    for sub, ses in bids.find_sessions(demo_root):
        img = read_image(bids.lesion_mask_path(demo_root, sub, ses, desc=bids.REFERENCE_DESC))
        vols.append(img.array.sum() * img.voxel_volume_mm3 / 1000.0)
    assert max(vols) > 5 * min(vols)
