"""AISAnnotation core library: pure Python (numpy, SimpleITK, nibabel, pydicom).

Nothing in this package imports Qt, CTK, VTK or Slicer, so it runs headless, in
tests and inside Slicer alike. Internal ADC unit: ×10⁻⁶ mm²/s.
"""

from __future__ import annotations

__version__ = "0.1.0"

ADC_THRESHOLD_E6 = 620.0
"""Consensus (R17) ischaemic-core threshold, ×10⁻⁶ mm²/s."""
