"""Small foci, confidence, chronic flags and the initial lesion (R17): exact synthetic tables."""

from __future__ import annotations

import numpy as np
import pytest
from aistest_preannotate import PARENCHYMA_ADC, synthetic

from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters
from AISAnnotationLib.preannotate.confidence import CONFIDENCE_MODEL, candidate_confidence, confidence_to_z
from AISAnnotationLib.preannotate.foci import MIN_SPREAD

# no core-path islands dropped; cores need a mean DWI ratio ≥ 3 or mean ADC ≤ 450 (so a focus at ADC 560 is
# not painted); foci: seeds ≥ 1.2 × local DWI and ≤ 0.92 × parenchyma ADC
P = PreannotationParameters(min_volume_mm3=0, grow_steps=0, core_mean_dwi_ratio=3.0,
                            foci_peak_ratio=2.0, foci_adc_ratio=0.8,
                            foci_adc_min_ratio=0.7, foci_min_volume_mm3=30.0, foci_background_mm=12.0,
                            min_confidence=0.0)


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
        # uniform parenchyma: its spread is the floor, so the focus stands out by (2.2 − 1) / MIN_SPREAD
        assert c.peak_z == pytest.approx(1.2 / MIN_SPREAD, rel=1e-5)
        assert c.confidence == pytest.approx(candidate_confidence(c.peak_z))


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


@pytest.mark.parametrize("z, expected", [(CONFIDENCE_MODEL[0], 0.5), (CONFIDENCE_MODEL[0] + 1.0, None),
                                         (CONFIDENCE_MODEL[0] - 1.0, None)])
def test_confidence_is_monotone_and_centred(z, expected):
    c = candidate_confidence(z)
    if expected is not None:
        assert c == pytest.approx(expected)
    else:
        assert (c > 0.5) == (z > CONFIDENCE_MODEL[0])
    assert confidence_to_z(c) == pytest.approx(z)


def _textured(spread, foci, shape=(40, 40, 20)):
    """Parenchyma DWI alternating 100·(1 ± spread) (a checkerboard: local spread = ``spread``) with foci
    {(i, j, k): DWI} of reduced ADC (0.7 × parenchyma)."""
    a, d, brain = synthetic(shape=shape)
    ii, jj, kk = np.indices(shape)
    d.array[...] = 100.0 * (1.0 + spread * np.where((ii + jj + kk) % 2 == 0, 1.0, -1.0))
    for (i, j, k), value in foci.items():
        d.array[i:i + 2, j:j + 2, k], a.array[i:i + 2, j:j + 2, k] = value, 0.7 * PARENCHYMA_ADC
    return a, d, brain


@pytest.mark.parametrize("spread, dwi, z", [(0.1, 150.0, 5.0), (0.1, 130.0, 3.0), (0.2, 150.0, 2.5)])
def test_peak_z_is_contrast_over_the_local_spread(spread, dwi, z):
    p = P.replace(foci_peak_ratio=1.2, foci_peak_z=0.0, foci_min_volume_mm3=8.0, foci_adc_min_ratio=0.8)
    a, d, brain = _textured(spread, {(19, 19, 10): dwi})
    r = PreannotationContext(a, d, brain, p).compute(p)
    focus = [c for c in r.candidates if c.voxels == 4]
    assert len(focus) == 1 and focus[0].peak_z == pytest.approx(z, rel=0.03)


def test_cut_on_confidence_keeps_the_focus_that_stands_out_from_its_own_tissue():
    # the same DWI contrast (1.5) is 5 spreads in calm tissue and 2.5 in noisy tissue: only the first is listed
    p = P.replace(foci_peak_ratio=1.2, foci_peak_z=0.0, foci_min_volume_mm3=8.0, foci_adc_min_ratio=0.8,
                  min_confidence=candidate_confidence(4.0))
    for spread, listed in ((0.1, 1), (0.2, 0)):
        a, d, brain = _textured(spread, {(19, 19, 10): 100.0 * (1.0 + 0.5)})
        r = PreannotationContext(a, d, brain, p).compute(p)
        assert len(r.candidates) == listed, spread


@pytest.mark.parametrize("min_dwi_ratio, listed", [(1.0, 0), (0.5, 1)])
def test_candidate_darker_than_the_parenchyma_is_not_listed(min_dwi_ratio, listed):
    # a focus ≥ 1.5 × its surroundings in a dark (shaded) part of the brain is still darker than the median
    p = P.replace(min_dwi_ratio=min_dwi_ratio, foci_peak_ratio=1.2)
    a, d, brain = synthetic()
    d.array[:, 24:, :] = 40.0  # the median parenchyma stays 100
    d.array[18:20, 30:32, 10], a.array[18:20, 30:32, 10] = 80.0, 0.7 * PARENCHYMA_ADC
    r = PreannotationContext(a, d, brain, p).compute(p)
    assert len(r.candidates) == listed


def test_confidence_cut_spares_regions_larger_than_a_focus():
    # the local z-score is a small-focus statistic: a core region above foci_max_volume_mm3 is judged by its
    # mean DWI ratio instead (2.0 here): kept at core_mean_dwi_ratio 1.9, cut at 2.1
    p = P.replace(min_confidence=candidate_confidence(4.0), foci_max_volume_mm3=1000.0, core_mean_dwi_ratio=1.9,
                  core_mean_adc_max=450.0)
    a, d, brain = _textured(0.3, {})  # noisy tissue: a contrast of 2 is only ~3 spreads
    a.array[6:12, 6:12, 5:10], d.array[6:12, 6:12, 5:10] = 400.0, 200.0  # 180 voxels = 1440 mm³
    a.array[25:28, 25:28, 8:10], d.array[25:28, 25:28, 8:10] = 400.0, 200.0  # 18 voxels = 144 mm³
    r = PreannotationContext(a, d, brain, p).compute(p)
    assert [c.voxels for c in r.candidates] == [180] and r.candidates[0].in_mask
    assert r.candidates[0].confidence < p.min_confidence and int(r.mask.sum()) == 180
    p = p.replace(core_mean_dwi_ratio=2.1)
    r = PreannotationContext(a, d, brain, p).compute(p)
    assert r.candidates == [] and not r.mask.any()


@pytest.mark.parametrize("dwi, low_voxel_adc, share_cut, listed", [
    (250.0, None, 0.2, False),   # share 0.16 / ln 2.5 = 0.175: T2-bright, barely restricted → not listed
    (200.0, None, 0.2, True),    # share 0.16 / ln 2.0 = 0.231
    (250.0, 620.0, 0.2, True),   # one voxel at 620 / 800 = 0.775 ≤ 0.78 of the local parenchyma ADC
    (250.0, None, 0.0, True),    # the veto off
])
def test_t2_driven_brightness_is_not_listed_r2(dwi, low_voxel_adc, share_cut, listed):
    # consensus R2: DWI-bright with ADC not (clearly) low is shine-through; here ADC 640 = 0.8 × the
    # parenchyma's 800, so reduced diffusion explains 1e-3 × (800 − 640) = 0.16 of the log DWI contrast
    p = P.replace(foci_peak_ratio=1.2, foci_adc_ratio=0.85, foci_adc_min_ratio=0.85, foci_min_volume_mm3=8.0,
                  shine_restriction_share=share_cut, shine_restricted_adc_ratio=0.78)
    a, d, brain = synthetic()
    a.array[20:24, 20, 10], d.array[20:24, 20, 10] = 640.0, dwi
    if low_voxel_adc is not None:
        a.array[20, 20, 10] = low_voxel_adc
    r = PreannotationContext(a, d, brain, p).compute(p)
    assert len(r.candidates) == int(listed) and not r.mask.any()
    if listed and low_voxel_adc is None:
        c = r.candidates[0]
        assert c.restriction_share == pytest.approx(0.16 / np.log(dwi / 100.0), rel=2e-3)  # float32 contrast
        assert r.to_dict()["candidates"][0]["restriction_share"] == pytest.approx(c.restriction_share, abs=1e-3)


def test_painted_core_is_never_vetoed_as_t2_driven():
    # ADC 600 < 620 (the consensus's initial lesion, R17) with DWI 4 × the parenchyma: reduced diffusion
    # explains only 0.2 / ln 4 = 0.14 of the contrast, yet the core stays painted and listed
    a, d, brain = synthetic()
    a.array[10:13, 10:13, 8:10], d.array[10:13, 10:13, 8:10] = 600.0, 400.0
    p = P.replace(shine_restriction_share=0.2, shine_restricted_adc_ratio=0.4)
    r = PreannotationContext(a, d, brain, p).compute(p)
    assert [c.voxels for c in r.candidates] == [18] and int(r.mask.sum()) == 18
    assert r.candidates[0].restriction_share < 0.2
