"""Pre-annotation: candidate acute lesions that point the annotator at every lesion (consensus R10, R12, R17).

:mod:`.context` holds the threshold-then-refine pipeline and its interactive preview,
:mod:`.params` its parameters, :mod:`.sparse` the sparse-voxel machinery, :mod:`.result` the
candidate list, :mod:`.output` running it on a case and writing the mask with its sidecar.
"""

from __future__ import annotations

from .context import PreannotationContext
from .output import PREANNOTATION_DESC, preannotate_case, write_preannotation
from .params import INTEGER_PARAMETERS, PARAMETER_SPECS, PreannotationParameters
from .result import Candidate, PreannotationResult
from .sparse import _OFFSETS26, _describe_sparse, _keep_big, _Lookup, _VoxelSet, sparse_components

__all__ = [
    "INTEGER_PARAMETERS", "PARAMETER_SPECS", "PREANNOTATION_DESC", "Candidate", "PreannotationContext",
    "PreannotationParameters", "PreannotationResult", "_OFFSETS26", "_Lookup", "_VoxelSet", "_describe_sparse",
    "_keep_big", "preannotate_case", "sparse_components", "write_preannotation",
]
