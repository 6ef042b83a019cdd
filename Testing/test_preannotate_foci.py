"""Small foci, confidence, chronic flags and the initial lesion (R17): exact synthetic tables."""

from __future__ import annotations

import numpy as np
import pytest
from aistest_preannotate import PARENCHYMA_ADC, synthetic

from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters
from AISAnnotationLib.preannotate.confidence import candidate_confidence

# no core-path islands dropped; cores need a mean DWI ratio ≥ 3 or mean ADC ≤ 450 (so a focus at ADC 560 is
# not painted); foci: seeds ≥ 1.2 × local DWI and ≤ 0.92 × parenchyma ADC
P = PreannotationParameters(min_volume_mm3=0, grow_steps=0, core_mean_dwi_ratio=3.0,
                            foci_peak_ratio=2.0, foci_adc_ratio=0.8,
                            foci_adc_min_ratio=0.7, foci_min_volume_mm3=30.0, foci_background_mm=12.0)


def _focus(n_voxels, dwi=220.0, adc=0.7 * PARENCHYMA_ADC, spacing=(2.0, 2.0, 2.0), shape=(40, 40, 20)):
    """A straight run of ``n_voxels`` along i: DWI-bright, ADC reduced but above 620 (no core)."""
    a, d, brain = synthetic(shape=shape, spacing=spacing)
    c = np.array(shape) // 2
    box = (slice(c[0], c[0] + n_voxels), c[1], c[2])
    a.array[box], d.array[box] = adc, dwi
    return PreannotationContext(a, d, brain, P).compute(P)


@pytest.mark.parametrize("n_voxels, listed", [(4, True), (3, False)])  # 32 mm³ ≥ 30; 24 mm³ < 30
def test_focus_is_listed_not_painted(n_voxels, listed):
    r = _focus(n_voxels)
    assert not r.mask.any()  # ADC 560 is not below 620: nothing painted
    assert len(r.candidates) == int(listed)
    if listed:
        c = r.candidates[0]
        assert not c.in_mask and c.voxels == n_voxels and int(r.listed.sum()) == n_voxels
        assert c.confidence == pytest.approx(candidate_confidence(2.2, 0.7, n_voxels * 8.0))


def test_focus_size_limit_is_physical():
    # the same 32 mm³ at 1 mm voxels is 32 voxels (a 4×4×2 block): still listed; 24 mm³ (24 voxels) is not
    for n, listed in ((32, True), (24, False)):
        a, d, brain = synthetic(shape=(60, 60, 30), spacing=(1.0, 1.0, 1.0))
        block = np.zeros(a.shape, dtype=bool)
        block[28:32, 28:32, 14:16] = True
        sel = tuple(np.argwhere(block)[:n].T)
        a.array[sel], d.array[sel] = 0.7 * PARENCHYMA_ADC, 220.0
        r = PreannotationContext(a, d, brain, P).compute(P)
        assert len(r.candidates) == int(listed), n


@pytest.mark.parametrize("adc_ratio, listed", [(0.70, True), (0.71, False)])  # lowest ratio ≤ 0.7
def test_focus_lowest_adc_relative_to_parenchyma(adc_ratio, listed):
    assert len(_focus(5, adc=adc_ratio * PARENCHYMA_ADC).candidates) == int(listed)


@pytest.mark.parametrize("rest_ratio, listed", [(0.8, True), (0.9, False)])  # mean ratio ≤ 0.8
def test_focus_mean_adc_relative_to_parenchyma(rest_ratio, listed):
    a, d, brain = synthetic()
    a.array[20:25, 20, 10] = rest_ratio * PARENCHYMA_ADC
    a.array[20, 20, 10] = 0.6 * PARENCHYMA_ADC  # the deepest voxel: mean (0.6 + 4 × rest) / 5
    d.array[20:25, 20, 10] = 220.0
    r = PreannotationContext(a, d, brain, P).compute(P)
    assert len(r.candidates) == int(listed) and not r.mask.any()


def test_focus_touching_the_core_is_not_listed_twice():
    a, d, brain = synthetic()
    a.array[10:13, 10:13, 8:10], d.array[10:13, 10:13, 8:10] = 400.0, 200.0  # core (18 voxels)
    a.array[13:16, 11, 9], d.array[13:16, 11, 9] = 630.0, 220.0  # a focus attached to it (not core)
    r = PreannotationContext(a, d, brain, P).compute(P)
    assert len(r.candidates) == 1 and r.candidates[0].in_mask and int(r.mask.sum()) == 18


def test_chronic_flag_leaves_unrestricted_regions_out():
    a, d, brain = synthetic()
    a.array[10:13, 10:13, 8:10], d.array[10:13, 10:13, 8:10] = 450.0, 200.0  # ADC ratio 0.5625
    p = P.replace(chronic_adc_ratio=0.55)
    r = PreannotationContext(a, d, brain, p).compute(p)
    assert not r.mask.any() and r.candidates == [] and len(r.chronic_regions) == 1
    assert r.chronic_regions[0].chronic and r.to_dict()["chronic"][0]["voxels"] == 18
    r = PreannotationContext(a, d, brain, P).compute(P)  # default 1.0: restricted, acute
    assert int(r.mask.sum()) == 18 and r.chronic_regions == []


def test_initial_lesion_is_the_absolute_adc_region_r17():
    a, d, brain = synthetic()
    a.array[10:13, 10:13, 8:10], d.array[10:13, 10:13, 8:10] = 600.0, 200.0   # < 620: initial lesion
    a.array[25:28, 25:28, 8:10], d.array[25:28, 25:28, 8:10] = 640.0, 200.0   # core only by relative ADC
    p = P.replace(adc_ratio_max=0.85, core_mean_adc_max=700.0)
    r = PreannotationContext(a, d, brain, p).compute(p)
    assert int(r.mask.sum()) == 36 and int(r.initial_lesion.sum()) == 18
    assert r.initial_lesion[10:13, 10:13, 8:10].all() and not r.initial_lesion[25:28, 25:28, 8:10].any()
    info = r.to_dict()["initial_lesion"]
    assert info["voxels"] == 18 and info["volume_ml"] == pytest.approx(0.144) and "R17" in info["label"]


@pytest.mark.parametrize("dwi_ratio, adc_ratio, volume, expected", [
    (1.3, 0.85, 30.0, 0.5), (2.0, 0.6, 1000.0, None), (1.2, 0.95, 10.0, None)])
def test_confidence_is_monotone_and_centred(dwi_ratio, adc_ratio, volume, expected):
    c = candidate_confidence(dwi_ratio, adc_ratio, volume)
    if expected is not None:
        assert c == pytest.approx(expected)
    else:
        mid = candidate_confidence(1.3, 0.85, 30.0)
        assert (c > mid) == (dwi_ratio > 1.3)
