"""DICOM in (consensus R5, R6, R8): conversion to BIDS with dcm2niix and de-identification.

- :func:`import_dicom_session` — one DICOM folder → one BIDS session (+ de-identified
  DICOM in ``sourcedata/``), with a per-series report.
- :func:`deidentify_dataset` — PS3.15 Annex E Basic Profile (+ documented options).
- :func:`phi_scan` — look for identifying data in a dataset or a DICOM folder.
"""

from __future__ import annotations

from .classify import Classification, b_value, classify_series
from .convert import ImportReport, SeriesReport, dcm2niix_executable, import_dicom_session
from .deidentify import DeidContext, deidentify_dataset, replace_uid
from .idmap import IdMap, check_outside
from .phi import Finding, phi_scan
from .scan import ScanResult, Series, read_dicom, scan_folder

__all__ = [
    "Classification", "DeidContext", "Finding", "IdMap", "ImportReport", "ScanResult", "Series",
    "SeriesReport", "b_value", "check_outside", "classify_series", "dcm2niix_executable",
    "deidentify_dataset", "import_dicom_session", "phi_scan", "read_dicom", "replace_uid", "scan_folder",
]
