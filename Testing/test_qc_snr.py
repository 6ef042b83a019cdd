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


def test_tissue_noise_separable_equals_the_laplacian_kernel():
    """σ from two 1D passes and a 5×5 minimum equals the 3×3 kernel and two erosions it replaced."""
    from scipy import ndimage

    img, brain, _ = phantom(5.0)
    img = np.round(img)  # integer values: both computations are exact
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)[:, :, None]
    r = ndimage.convolve(img, k, mode="nearest")
    inner = ndimage.binary_erosion(brain, np.ones((3, 3, 1), bool), iterations=2)
    expected = 1.4826 * np.median(np.abs(r[inner])) / 6.0
    assert S.noise_sigma_tissue(img, brain) == expected
    assert S.noise_sigma_tissue(np.asfortranarray(img), np.asfortranarray(brain)) == expected


def _head(spacing, shape, sigma=4.0, seed=2):
    rng = np.random.default_rng(seed)
    ijk = np.indices(shape).transpose(1, 2, 3, 0) * np.array(spacing)
    c = np.array(shape) * np.array(spacing) / 2
    r = np.sqrt((((ijk - c) / (c * [0.6, 0.7, 0.8])) ** 2).sum(-1))
    a = np.where(r <= 1, 120.0, 0.0)
    img = np.hypot(a + rng.normal(0, sigma, shape), rng.normal(0, sigma, shape))
    return img, r <= 0.9


def test_background_on_the_working_grid_equals_the_image_grid_at_2mm():
    img, brain = _head((2.0, 2.0, 2.0), (80, 80, 40))
    assert np.array_equal(S.background_mask(img, (2.0, 2.0, 2.0)), S.background_mask(img, (2.0, 2.0, 2.0), work_mm=None))
    fine = S.measure("dwi", img, (2.0, 2.0, 2.0), brain, work_mm=None).as_dict()
    assert S.measure("dwi", np.asfortranarray(img), (2.0, 2.0, 2.0), brain).as_dict() == fine


def test_background_on_the_working_grid_of_a_fine_image():
    """0.5 mm in-plane: the head is found on 2 mm blocks; σ stays within 3 % of the image-grid answer."""
    sp = (0.5, 0.5, 4.0)
    img, brain = _head(sp, (256, 256, 16))
    work, fine = S.background_mask(img, sp), S.background_mask(img, sp, work_mm=None)
    assert not (work & brain).any() and abs(int(work.sum()) - int(fine.sum())) < 0.1 * fine.sum()
    a, b = S.measure("flair", img, sp, brain), S.measure("flair", img, sp, brain, work_mm=None)
    assert a.sigma == pytest.approx(4.0, rel=TOL) and a.sigma == pytest.approx(b.sigma, rel=TOL)
    assert a.snr_status == b.snr_status == "pass"
