"""Pre-annotation algorithm: exact synthetic tables (no Slicer)."""

from __future__ import annotations

import numpy as np
import pytest
from aistest_preannotate import SPACING, synthetic

from AISAnnotationLib.errors import InputError
from AISAnnotationLib.metrics import compute_dice as dice
from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters
from AISAnnotationLib.units import adc_to_internal, detect_adc_unit

# plain criteria: no erosion needed (brain given), no islands dropped, no growth, no small-foci detector
BASE = PreannotationParameters(min_volume_mm3=0, grow_steps=0, foci_peak_ratio=0)  # core path only
BOX = (slice(10, 13), slice(10, 13), slice(8, 10))  # 3×3×2 = 18 voxels


def _run(adc_value, dwi_value=200.0, params=BASE, box=BOX):
    adc, dwi, brain = synthetic()
    adc.array[box] = adc_value
    dwi.array[box] = dwi_value
    return PreannotationContext(adc, dwi, brain, params).compute(params)


@pytest.mark.parametrize("adc_value, included", [(619.9, True), (620.0, False), (620.1, False), (100.0, True)])
def test_adc_threshold_boundary_is_strict(adc_value, included):
    r = _run(adc_value)
    assert int(r.mask.sum()) == (18 if included else 0)


@pytest.mark.parametrize("threshold, adc_value, included", [(700.0, 699.9, True), (700.0, 700.0, False)])
def test_threshold_parameter(threshold, adc_value, included):
    p = BASE.replace(adc_threshold=threshold, core_mean_adc_max=100.0)
    assert bool(_run(adc_value, params=p).mask.any()) is included


@pytest.mark.parametrize("unit, factor", [("mm2/s", 1e-6), ("1e-3 mm2/s", 1e-3), ("1e-6 mm2/s", 1.0)])
@pytest.mark.parametrize("adc_internal, included", [(619.9, True), (620.1, False)])
def test_same_result_whatever_the_adc_file_unit(unit, factor, adc_internal, included):
    adc, dwi, brain = synthetic()
    adc.array[BOX] = adc_internal
    dwi.array[BOX] = 200.0
    in_file = adc.with_array((adc.array.astype(np.float64) * factor).astype(np.float32))
    det = detect_adc_unit(in_file.array, brain)
    assert det.unit == unit
    internal = adc_to_internal(in_file, det)
    r = PreannotationContext(internal, dwi, brain, BASE).compute(BASE)
    assert int(r.mask.sum()) == (18 if included else 0)


@pytest.mark.parametrize("dwi_value, adc_value, kept", [
    (170.0, 600.0, True),   # mean DWI ratio 1.7 ≥ 1.7
    (169.0, 600.0, False),  # ratio 1.69, ADC only borderline low: artefact-like, dropped
    (145.0, 450.0, True),   # faint on DWI (1.45) but deeply restricted (ADC ≤ 450): kept
    (145.0, 451.0, False),
    (139.0, 300.0, False),  # below the voxel criterion core_dwi_ratio 1.4
])
def test_core_component_criteria(dwi_value, adc_value, kept):
    assert bool(_run(adc_value, dwi_value).mask.any()) is kept


@pytest.mark.parametrize("n_voxels, min_volume, kept", [(5, 40.0, True), (4, 40.0, False), (5, 40.1, False),
                                                         (1, 8.0, True), (1, 8.1, False)])
def test_island_size_at_the_limit(n_voxels, min_volume, kept):
    adc, dwi, brain = synthetic()
    # a diagonal chain: only 26-connectivity (corner contact) makes it one island
    for t in range(n_voxels):
        adc.array[10 + t, 10 + t, 8 + t] = 400.0
        dwi.array[10 + t, 10 + t, 8 + t] = 200.0
    p = BASE.replace(min_volume_mm3=min_volume)
    r = PreannotationContext(adc, dwi, brain, p).compute(p)
    assert int(r.mask.sum()) == (n_voxels if kept else 0)
    assert len(r.candidates) == (1 if kept else 0)


def test_refine_grows_one_ring_into_dwi_bright_moderately_restricted_rim():
    adc, dwi, brain = synthetic()
    adc.array[BOX] = 400.0
    dwi.array[BOX] = 200.0
    # rim candidates next to the core, one voxel each along i
    dwi.array[13, 11, 8], adc.array[13, 11, 8] = 135.0, 700.0  # bright enough, ADC < 750: grown
    dwi.array[9, 11, 8], adc.array[9, 11, 8] = 125.0, 700.0    # DWI ratio 1.25 < 1.3: not grown
    dwi.array[11, 13, 8], adc.array[11, 13, 8] = 135.0, 760.0  # ADC 760 ≥ 750: not grown
    dwi.array[14, 11, 8], adc.array[14, 11, 8] = 135.0, 700.0  # second ring: only with grow_steps=2
    for steps, expected in ((0, 18), (1, 19), (2, 20)):
        p = BASE.replace(grow_steps=steps)
        r = PreannotationContext(adc, dwi, brain, p).compute(p)
        assert int(r.mask.sum()) == expected, steps


def test_shine_through_is_flagged_not_included():
    adc, dwi, brain = synthetic()
    adc.array[BOX] = 400.0
    dwi.array[BOX] = 200.0
    shine = (slice(25, 28), slice(25, 28), slice(8, 10))
    adc.array[shine], dwi.array[shine] = 1000.0, 200.0  # DWI bright, ADC high: T2 shine-through
    mid = (slice(25, 28), slice(5, 8), slice(8, 10))
    adc.array[mid], dwi.array[mid] = 700.0, 200.0  # bright, mildly low ADC: neither included nor flagged
    r = PreannotationContext(adc, dwi, brain, BASE).compute(BASE)
    assert int(r.mask.sum()) == 18 and not r.mask[shine].any() and not r.mask[mid].any()
    assert r.shine_through[shine].all() and int(r.shine_through.sum()) == 18
    assert len(r.shine_through_regions) == 1
    assert r.shine_through_regions[0].mean_adc == pytest.approx(1000.0)


def test_candidate_list_is_exact():
    adc, dwi, brain = synthetic()
    adc.array[BOX] = 400.0
    dwi.array[BOX] = 200.0
    small = (slice(30, 31), slice(30, 32), slice(5, 6))
    adc.array[small], dwi.array[small] = 300.0, 250.0
    r = PreannotationContext(adc, dwi, brain, BASE).compute(BASE)
    big, little = r.candidates
    assert (big.id, big.voxels, little.id, little.voxels) == (1, 18, 2, 2)
    assert big.volume_ml == pytest.approx(18 * 8 / 1000)
    # centre of voxels i 10..12, j 10..12, k 8..9 → (11, 11, 8.5) × 2 mm + origin (-40, -40, -20)
    assert big.centroid_ras == pytest.approx((-18.0, -18.0, -3.0))
    assert (big.mean_adc, big.mean_dwi_ratio) == pytest.approx((400.0, 2.0))
    assert little.centroid_ras == pytest.approx((20.0, 21.0, -10.0))
    assert (little.mean_adc, little.mean_dwi_ratio) == pytest.approx((300.0, 2.5))
    d = r.to_dict()
    assert d["lesion_voxels"] == 20 and d["candidates"][0]["volume_ml"] == pytest.approx(0.144)
    assert d["parameter_units"]["adc_threshold"] == "1e-6 mm2/s"


def test_preview_is_the_threshold_of_cached_eligible_voxels():
    adc, dwi, brain = synthetic()
    rng = np.random.default_rng(1)
    adc.array[...] = rng.uniform(300, 1200, adc.shape3).astype(np.float32)
    dwi.array[...] = rng.uniform(50, 250, dwi.shape3).astype(np.float32)
    ctx = PreannotationContext(adc, dwi, brain, BASE)
    buf = None
    for thr in (620.0, 900.0, 400.0, 620.0):
        buf = ctx.preview(thr, 1.4, out=buf)
        want = brain & (ctx.ratio >= 1.4) & (ctx.adc < thr)
        assert buf.dtype == np.uint8 and buf.flags.f_contiguous and np.array_equal(buf.astype(bool), want), thr
    lo, hi = ctx.refine_intensity_range(BASE)
    assert lo == pytest.approx(1.3 * ctx.parenchyma_dwi_median) and hi == pytest.approx(dwi.array[brain].max())


@pytest.mark.parametrize("changes, message", [
    ({"adc_threshold": 50.0}, "outside"), ({"min_volume_mm3": -1.0}, "outside"),
    ({"grow_steps": 1.5}, "whole number"), ({"core_dwi_ratio": float("nan")}, "outside"),
    ({"adc_threshold": "620"}, "expected a number"),
    ({"parenchyma_adc_min": 1500.0, "parenchyma_adc_max": 1400.0}, "below"),
])
def test_parameters_are_validated(changes, message):
    with pytest.raises(InputError, match=message):
        PreannotationParameters(**changes)


def test_parameters_round_trip_and_describe():
    p = PreannotationParameters(adc_threshold=600.0, grow_steps=2)
    assert PreannotationParameters.from_dict(p.to_dict()) == p
    with pytest.raises(InputError, match="unknown"):
        PreannotationParameters.from_dict({"adc_treshold": 600})
    rows = {r["name"]: r for r in PreannotationParameters.describe()}
    assert rows["adc_threshold"]["default"] == 620.0 and rows["min_volume_mm3"]["unit"] == "mm3"


def test_inputs_are_checked():
    adc, dwi, brain = synthetic()
    with pytest.raises(InputError, match="not on the DWI grid"):
        PreannotationContext(adc.with_array(adc.array[:-1]), dwi, brain)
    with pytest.raises(InputError, match="ADC unit"):
        PreannotationContext(adc.with_array(adc.array * 1e-6), dwi, brain)


def test_dice_convention():
    a = np.zeros((2, 2, 2), bool)
    assert dice(a, a) == 1.0
    b = a.copy()
    b[0, 0, 0] = True
    assert dice(a, b) == 0.0 and dice(b, b) == 1.0
    assert SPACING == (2.0, 2.0, 2.0)
