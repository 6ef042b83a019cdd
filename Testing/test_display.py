"""Display presets and 2D helpers (pure): small exact cases."""

from __future__ import annotations

import numpy as np
import pytest

from AISAnnotationLib import display


@pytest.mark.parametrize("values, mask, want", [
    # brain voxels 100..199 inside a background of zeros: the window ignores the background
    (np.r_[np.zeros(900), np.arange(100, 200)], np.r_[np.zeros(900, bool), np.ones(100, bool)], (100.99, 198.505)),
    # no mask: non-zero voxels only
    (np.r_[np.zeros(900), np.arange(100, 200)], None, (100.99, 198.505)),
    # constant image: still a positive width
    (np.full(50, 7.0), None, (7.0, 8.0)),
    # empty image
    (np.zeros(20), None, (0.0, 1.0)),
])
def test_percentile_window(values, mask, want):
    lo, hi = display.percentile_window(values, mask)
    assert (lo, hi) == pytest.approx(want, abs=1e-6)
    assert hi > lo


def test_adc_preset_is_fixed_and_others_are_brain_windowed():
    adc = display.sequence_preset("adc", np.random.default_rng(0).uniform(0, 3000, 100))
    assert (adc.lower, adc.upper, adc.color_table, adc.threshold) == (0.0, 2000.0, "adc620", 620.0)
    assert (adc.window, adc.level) == (2000.0, 1000.0)
    arr = np.zeros((10, 10, 10))
    arr[2:8, 2:8, 2:8] = np.linspace(50, 150, 216).reshape(6, 6, 6)
    dwi = display.sequence_preset("dwi", arr, arr > 0)
    assert dwi.color_table == "grey" and 50 <= dwi.lower < 52 and 149 < dwi.upper <= 150


@pytest.mark.parametrize("value, tinted", [(0.0, False), (100.0, True), (600.0, True), (640.0, False),
                                           (1500.0, False), (1999.0, False)])
def test_adc_table_tints_only_below_620(value, tinted):
    table = display.adc_color_table()
    i = min(int(value / 2000.0 * len(table)), len(table) - 1)
    r, g, b, a = table[i]
    assert a == 1.0
    if tinted:
        assert b > r + 0.2
    else:
        assert r == pytest.approx(g) == pytest.approx(b)


def test_adc_table_is_graded_below_threshold():
    table = display.adc_color_table()
    blues = table[1:79, 2]
    assert np.all(np.diff(blues) > 0)  # darker = lower ADC, still readable


def test_to_rgb_grey_and_adc():
    grey = display.DisplayPreset("dwi", 0.0, 10.0)
    rgb = display.to_rgb(np.array([[-5.0, 5.0, 20.0]]), grey)
    assert rgb[0, :, 0].tolist() == [0.0, 0.5, 1.0] and np.all(rgb[..., 0] == rgb[..., 2])
    adc = display.sequence_preset("adc", np.zeros(3))
    rgb = display.to_rgb(np.array([[300.0, 1000.0]]), adc)
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[0, 1, 0] == pytest.approx(rgb[0, 1, 2])


@pytest.mark.parametrize("mask, outline", [
    (np.zeros((3, 3)), np.zeros((3, 3))),
    (np.ones((1, 1)), np.ones((1, 1))),
    (np.pad(np.ones((3, 3)), 1), np.pad(np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]]), 1)),
])
def test_mask_outline(mask, outline):
    assert np.array_equal(display.mask_outline(mask), outline.astype(bool))


def test_largest_lesion_slice():
    m = np.zeros((4, 4, 5), bool)
    assert display.largest_lesion_slice(m) is None
    m[0, 0, 1] = True
    m[:2, :2, 3] = True
    m[:2, :2, 4] = True
    assert display.lesion_area_per_slice(m).tolist() == [0, 1, 0, 4, 4]
    assert display.largest_lesion_slice(m) == 3  # first of the ties


@pytest.mark.parametrize("sequence", ["dwi", "eadc", "flair", "t1w", "t2w"])
def test_window_presets_percentiles(sequence):
    arr = np.arange(1000, dtype=float).reshape(10, 10, 10)
    brain = arr >= 500  # values 500..999
    presets = display.window_presets(sequence, arr, brain)
    assert [p.name for p in presets] == [n for n, _ in display.PERCENTILE_PRESETS]
    first = display.sequence_preset(sequence, arr, brain)
    assert (presets[0].lower, presets[0].upper) == (first.lower, first.upper)
    assert presets[1].lower == pytest.approx(500 + 0.25 * 499) and presets[1].upper == pytest.approx(500 + 0.999 * 499)
    assert (presets[2].lower, presets[2].upper) == (500.0, 999.0)
    assert all(p.color_table == "grey" and p.sequence == sequence for p in presets)


def test_window_presets_adc_keep_the_tint():
    presets = display.window_presets("adc", np.zeros((2, 2, 2)))
    assert [(p.lower, p.upper) for p in presets] == [r for _, r in display.ADC_RANGES]
    assert (presets[0].lower, presets[0].upper) == display.ADC_DISPLAY_RANGE
    assert all(p.color_table == "adc620" and p.threshold == display.ADC_THRESHOLD for p in presets)
