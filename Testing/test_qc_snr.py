"""SNR/CNR on synthetic magnitude images with known Rician noise (tolerance: 3 %)."""

from __future__ import annotations

import numpy as np
import pytest

from AISAnnotationLib.qc import snr as S

TOL = 0.03


def phantom(sigma, signal=100.0, lesion=150.0, shape=(96, 96, 40), seed=0):
    rng = np.random.default_rng(seed)
    ijk = np.indices(shape).transpose(1, 2, 3, 0) - np.array(shape) / 2
    brain = (((ijk / np.array([30, 30, 14])) ** 2).sum(-1)) <= 1
    les = ((ijk - [10, 0, 0]) ** 2).sum(-1) < 36
    a = np.where(brain, signal, 0.0)
    a[les] = lesion
    img = np.sqrt((a + rng.normal(0, sigma, shape)) ** 2 + rng.normal(0, sigma, shape) ** 2)
    return img, brain, les


@pytest.mark.parametrize("method", ["sd", "mean"])
@pytest.mark.parametrize("sigma", [2.0, 5.0, 10.0])
def test_noise_sigma_rayleigh_corrected(sigma, method):
    rng = np.random.default_rng(1)
    bg = np.hypot(rng.normal(0, sigma, 50000), rng.normal(0, sigma, 50000))
    assert S.noise_sigma(bg, method) == pytest.approx(sigma, rel=TOL)
    # without the Rayleigh correction the SD would be 34 % low
    assert bg.std() == pytest.approx(sigma * 0.655, rel=TOL)


@pytest.mark.parametrize("sigma", [5.0, 10.0])
def test_snr_cnr_known(sigma):
    img, brain, les = phantom(sigma)
    m = S.measure("dwi", img, (2.0, 2.0, 4.0), brain, lesion=les)
    mean_signal = img[brain].mean()                     # includes the lesion and the Rician bias
    assert m.sigma == pytest.approx(sigma, rel=TOL)
    assert m.snr == pytest.approx(mean_signal / sigma, rel=TOL)
    assert m.snr == pytest.approx(100.0 / sigma, rel=0.06)
    assert m.cnr_kind == "lesion" and m.cnr == pytest.approx(50.0 / sigma, rel=0.05)
    assert m.snr_status == "pass" and m.cnr_status == "pass"


def test_thresholds_are_configurable_and_fail():
    img, brain, les = phantom(25.0)
    m = S.measure("dwi", img, (2.0, 2.0, 4.0), brain, lesion=les, snr_min=5.0, cnr_min=2.5)
    assert m.snr == pytest.approx(4.0, rel=0.08) and m.snr_status == "fail"
    assert m.cnr_status == "fail"


def test_reference_tissue_cnr_without_lesion():
    img, brain, _ = phantom(5.0, lesion=100.0)
    shape = img.shape
    ijk = np.indices(shape).transpose(1, 2, 3, 0) - np.array(shape) / 2
    csf = brain & ((((ijk / np.array([8, 8, 6])) ** 2).sum(-1)) <= 1)
    img[csf] = np.hypot(300 + np.random.default_rng(3).normal(0, 5, csf.sum()), 0)
    m = S.measure("b0", img, (2.0, 2.0, 4.0), brain, lesion=None)
    assert m.cnr_kind == "reference tissue" and m.cnr == pytest.approx(200 / 5.0, rel=0.05)


@pytest.mark.parametrize("sigma", [2.0, 5.0])
def test_skull_stripped_image_uses_tissue_noise(sigma):
    img, brain, les = phantom(sigma)
    img[~brain] = 0.0  # skull-stripped: no air to measure
    m = S.measure("dwi", img, (2.0, 2.0, 4.0), brain, lesion=les)
    assert m.method == "tissue" and "Laplacian" in m.detail
    assert m.sigma == pytest.approx(sigma, rel=0.05)
    assert m.snr == pytest.approx(img[brain].mean() / sigma, rel=0.05)


def test_nothing_to_measure_is_unknown():
    img = np.zeros((40, 40, 10))
    brain = np.zeros(img.shape, bool)
    brain[18:21, 18:21, 4:6] = True
    img[brain] = 100.0
    m = S.measure("dwi", img, (2.0, 2.0, 4.0), brain)
    assert m.snr is None and m.snr_status == "unknown" and "not measurable" in m.detail
