from __future__ import annotations

import numpy as np
import pytest

from AISAnnotationLib.errors import UnitError
from AISAnnotationLib.image import Image
from AISAnnotationLib.units import adc_to_internal, detect_adc_unit, normalise_unit_name


def _brainlike(scale: float) -> np.ndarray:
    """Background 0, WM 720, GM 830, CSF 3000 (×10⁻⁶ mm²/s), expressed at ``scale``."""
    v = np.zeros(1000)
    v[100:500] = 720
    v[500:800] = 830
    v[800:900] = 3000
    return v * scale


@pytest.mark.parametrize(
    "scale, unit, factor",
    [
        (1e-6, "mm2/s", 1e6),
        (1e-3, "1e-3 mm2/s", 1e3),
        (1.0, "1e-6 mm2/s", 1.0),
    ],
)
def test_detects_each_unit(scale, unit, factor):
    det = detect_adc_unit(_brainlike(scale))
    assert det.unit == unit
    assert det.factor == factor
    assert det.source == "detected"
    assert unit in det.reason


@pytest.mark.parametrize(
    "median, unit",
    [
        (1e-4, "mm2/s"), (5e-3, "mm2/s"),          # window edges are inclusive
        (0.1, "1e-3 mm2/s"), (5.0, "1e-3 mm2/s"),
        (100.0, "1e-6 mm2/s"), (5000.0, "1e-6 mm2/s"),
    ],
)
def test_window_edges(median, unit):
    assert detect_adc_unit(np.array([0.0, median, median, median])).unit == unit


@pytest.mark.parametrize("median", [5e-5, 0.007, 20.0, 60000.0])
def test_values_fitting_no_unit_are_refused(median):
    with pytest.raises(UnitError, match="fits no ADC unit"):
        detect_adc_unit(np.array([median] * 3), what="adc.nii.gz")


def test_nan_refused_with_count_and_file():
    v = _brainlike(1.0)
    v[3] = np.nan
    v[4] = np.inf
    with pytest.raises(UnitError, match=r"adc\.nii\.gz: 2 voxel\(s\) are NaN or infinite"):
        detect_adc_unit(v, what="adc.nii.gz")


def test_negative_inside_brain_refused_but_background_noise_clipped():
    v = _brainlike(1.0)
    brain = v > 0
    noisy = v.copy()
    noisy[:50] = -300.0  # background: from ln(S0/S1) with S1 > S0
    det = detect_adc_unit(noisy, brain)
    assert det.clipped_negative == 50
    out = adc_to_internal(Image(noisy.reshape(10, 10, 10), np.eye(4)), det)
    assert out.array.min() == 0.0
    bad = v.copy()
    bad[100:200] = -720.0  # 100 of the 800 brain voxels (12.5 %) negative
    with pytest.raises(UnitError, match="12.5% of brain voxels have negative ADC"):
        detect_adc_unit(bad, bad != 0)


def test_override_skips_detection_and_converts():
    v = _brainlike(1e-3)
    det = detect_adc_unit(v, override="1e-3")
    assert (det.unit, det.source) == ("1e-3 mm2/s", "override")
    out = adc_to_internal(Image(v.reshape(10, 10, 10), np.eye(4)), det)
    assert out.array.dtype == np.float32
    assert float(out.array.max()) == pytest.approx(3000.0)
    assert out.meta["AISADCUnit"]["source"] == "override"


@pytest.mark.parametrize("name, unit", [("mm²/s", "mm2/s"), ("×10^-3 mm²/s", "1e-3 mm2/s"), ("um2/ms", "1e-3 mm2/s"), ("1e-6", "1e-6 mm2/s")])
def test_unit_names(name, unit):
    assert normalise_unit_name(name) == unit


def test_unknown_unit_name():
    with pytest.raises(UnitError, match="unknown ADC unit"):
        normalise_unit_name("furlongs")
