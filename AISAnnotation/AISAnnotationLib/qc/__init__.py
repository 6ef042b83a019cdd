"""Image quality control before annotation (consensus R3, R4, R16).

- :mod:`.acquisition`: acquisition rules of the consensus's Table 1 from sidecars + geometry;
- :mod:`.snr`: objective SNR / CNR (MRIQC-style definitions, Rayleigh-corrected noise);
- :mod:`.subjective`: readers' Likert scores, artifact flags and exclusions;
- :mod:`.store`: where a session's QC record lives (validator-clean) and the queue decision;
- :mod:`.session`: everything for one session / a whole dataset.
"""
