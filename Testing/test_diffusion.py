from __future__ import annotations

import numpy as np
import pytest

from AISAnnotationLib.diffusion import compute_adc, compute_eadc, split_shells
from AISAnnotationLib.errors import InputError


def test_adc_and_eadc_exact():
    s0 = np.array([1000.0, 1000.0, 0.0, 500.0])
    adc_true = np.array([700.0, 3000.0, 800.0, 0.0])  # ×10⁻⁶ mm²/s
    sb = s0 * np.exp(-1000 * adc_true * 1e-6)
    sb[3] = 600.0  # S_b > S0: noise → clipped to 0
    adc = compute_adc(s0, sb, 1000.0)
    np.testing.assert_allclose(adc, [700.0, 3000.0, 0.0, 0.0], rtol=1e-5)
    e = compute_eadc(adc, 1000.0)
    np.testing.assert_allclose(e, [np.exp(-0.7), np.exp(-3.0), 0.0, 0.0], rtol=1e-5)


def test_split_shells_trace_is_mean_over_directions():
    dwi = np.zeros((2, 2, 2, 5), np.float32)
    dwi[..., 0] = 100
    dwi[..., 1:4] = np.array([10, 20, 30], np.float32)
    dwi[..., 4] = 90
    sh = split_shells(dwi, np.array([0, 1000, 1000, 995, 0.004]))
    assert (sh.n_b0, sh.n_b1000) == (2, 3)
    assert float(sh.b1000[0, 0, 0]) == 20.0
    assert float(sh.b0[0, 0, 0]) == 95.0


@pytest.mark.parametrize("bvals, msg", [
    (np.array([0, 500, 500]), r"no b≈1000 s/mm² shell \(b-values found: \[0, 500\]\)"),
    (np.array([0, 1000]), "3 volumes but 2 b-values"),
])
def test_split_shells_errors(bvals, msg):
    with pytest.raises(InputError, match=msg):
        split_shells(np.zeros((2, 2, 2, 3)), bvals, what="x_dwi.nii.gz")
