"""Tiny synthetic DWI/ADC cases for the pre-annotation tests (exact, hand-checkable)."""

from __future__ import annotations

import numpy as np

from AISAnnotationLib.image import Image

SHAPE = (40, 40, 20)
SPACING = (2.0, 2.0, 2.0)  # 8 mm³ voxels
PARENCHYMA_ADC = 800.0
PARENCHYMA_DWI = 100.0


def affine(spacing=SPACING, origin=(-40.0, -40.0, -20.0)) -> np.ndarray:
    a = np.diag([*spacing, 1.0])
    a[:3, 3] = origin
    return a


def synthetic(shape=SHAPE, spacing=SPACING):
    """(adc Image ×10⁻⁶, dwi Image, brain bool): uniform parenchyma everywhere in the brain box."""
    adc = np.full(shape, PARENCHYMA_ADC, dtype=np.float32)
    dwi = np.full(shape, PARENCHYMA_DWI, dtype=np.float32)
    brain = np.zeros(shape, dtype=bool)
    brain[2:-2, 2:-2, 2:-2] = True
    a = affine(spacing)
    return Image(adc, a, name="adc"), Image(dwi, a, name="dwi"), brain


def put(img: Image, box, value: float) -> None:
    img.array[box] = value
