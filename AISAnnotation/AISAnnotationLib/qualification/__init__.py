"""Annotator qualification on trial cases (consensus R13, R15).

:mod:`.trialset` (the data manager's trial set and thresholds), :mod:`.score` (scoring an
annotator's trial masks, the per-annotator HTML + JSON report, the registry record).
"""

from __future__ import annotations

from .score import qualify, report_dir
from .trialset import DEFAULT_THRESHOLDS, MIN_CASES, define_trial_set, load_trial_set, trial_set_path

__all__ = ["DEFAULT_THRESHOLDS", "MIN_CASES", "define_trial_set", "load_trial_set", "qualify", "report_dir",
           "trial_set_path"]
