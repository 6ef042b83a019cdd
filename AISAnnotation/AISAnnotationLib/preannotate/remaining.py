"""The candidate list after edits: which candidates the annotator's segment still holds (consensus R10, R17).

After *Apply*, the candidate rows point at the painted regions. Once the annotator removes islands,
erases or undoes, a row must not send the views to a lesion that is no longer in the segment. The
rule: each candidate owns its 26-connected region of the listed mask (:func:`candidate_labels`, once
per apply); a painted candidate (``in_mask``) with no voxel of its region left in the segment leaves
the list, the others report the segment's voxels in their region (voxels, ``volume_ml``,
``centroid_ras`` recomputed); a candidate only listed for review (never painted) stays as listed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def candidate_labels(result: Any, reference: Any) -> np.ndarray:
    """int32 [i, j, k] on the DWI grid: the id of the candidate owning each voxel of ``result.listed``
    (0 elsewhere). A candidate owns the 26-connected region of its size nearest its centroid (mm)."""
    from ..metrics import label_components

    comp = label_components(result.listed)
    out = np.zeros(comp.labels.shape, dtype=np.int32)
    if comp.count == 0:
        return out
    flat = comp.labels.reshape(-1)
    idx = np.flatnonzero(flat)
    lab = flat[idx]
    ijk = np.stack(np.unravel_index(idx, comp.labels.shape), axis=1).astype(float)
    sizes = np.bincount(lab, minlength=comp.count + 1)
    mean = np.stack([np.bincount(lab, weights=ijk[:, a], minlength=comp.count + 1) for a in range(3)], 1)
    mean[1:] /= np.maximum(sizes[1:, None], 1)
    ras = np.asarray(reference.ijk_to_ras(mean[1:]), float).reshape(-1, 3)
    owner = np.zeros(comp.count + 1, dtype=np.int32)
    for c in result.candidates:
        d = np.linalg.norm(ras - np.asarray(c.centroid_ras, float), axis=1)
        d[sizes[1:] != c.voxels] = np.inf
        k = int(np.argmin(d)) + 1
        if np.isfinite(d[k - 1]) and owner[k] == 0:
            owner[k] = c.id
    out.reshape(-1)[idx] = owner[lab]
    return out


def remaining_candidates(rows: list[dict[str, Any]], labels: np.ndarray, segment: np.ndarray,
                         reference: Any) -> list[dict[str, Any]]:
    """The candidate rows (``Candidate.to_dict``, list order kept) as the ``segment`` (bool, DWI grid) holds
    them now: see the module doc. A row whose region is unknown (no id in ``labels``) stays unchanged."""
    seg = np.asarray(segment, bool).reshape(-1)
    lab = labels.reshape(-1)
    idx = np.flatnonzero(seg & (lab > 0))
    ids = lab[idx]
    n = int(lab.max(initial=0)) + 1
    counts = np.bincount(ids, minlength=n)
    ijk = np.stack(np.unravel_index(idx, labels.shape), axis=1).astype(float)
    sums = np.stack([np.bincount(ids, weights=ijk[:, a], minlength=n) for a in range(3)], 1)
    known = np.bincount(lab, minlength=n) > 0
    vox_ml = reference.voxel_volume_mm3 / 1000.0
    out = []
    for row in rows:
        cid = int(row["id"])
        if cid >= n or not known[cid] or not row.get("in_mask", True):
            out.append(dict(row))
            continue
        c = int(counts[cid])
        if c == 0:
            continue
        ras = np.asarray(reference.ijk_to_ras(sums[cid] / c), float).reshape(3)
        out.append(dict(row, voxels=c, volume_ml=round(c * vox_ml, 6), centroid_ras=[round(float(v), 3) for v in ras]))
    return out
