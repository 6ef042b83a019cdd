"""Uncertain regions (R18) from markups points or segment components; jumping the views to them."""

from __future__ import annotations

from typing import Any

import numpy as np
import slicer

from AISAnnotationLib.errors import InputError
from AISAnnotationLib.metrics import label_components
from AISAnnotationLib.uncertain import UncertainRegion

from .segmentations import segment_to_mask
from .volumes import volume_node_to_image


def region_from_markup_point(markups_node: Any, index: int, note: str, decision: str = "for-review",
                             rater: str = "") -> UncertainRegion:
    """An uncertain point at control point ``index`` of a markups node (world RAS)."""
    n = markups_node.GetNumberOfControlPoints()
    if not 0 <= index < n:
        raise InputError(f"{markups_node.GetName()}: no control point {index} (it has {n})")
    pos = [0.0, 0.0, 0.0]
    markups_node.GetNthControlPointPositionWorld(index, pos)
    return UncertainRegion(tuple(pos), note, decision=decision, rater=rater, kind="point")


def component_at(seg_node: Any, segment_id: str, reference_node: Any, ras: Any) -> np.ndarray:
    """Boolean mask of the 26-connected component of the segment containing RAS point ``ras``."""
    mask = segment_to_mask(seg_node, segment_id, reference_node)
    ref = volume_node_to_image(reference_node)
    ijk = np.rint(ref.ras_to_ijk(np.asarray(ras, float))).astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.array(mask.shape)) or not mask[tuple(ijk)]:
        raise InputError(f"segment {segment_id!r} has no voxel at RAS {tuple(np.round(ras, 1))}")
    labels = label_components(mask).labels
    return labels == labels[tuple(ijk)]


def region_from_segment_component(seg_node: Any, segment_id: str, reference_node: Any, ras: Any, note: str,
                                  decision: str = "for-review", rater: str = "") -> UncertainRegion:
    """An uncertain region = the segment's component at ``ras`` (centroid is the jump-to point)."""
    comp = component_at(seg_node, segment_id, reference_node, ras)
    ref = volume_node_to_image(reference_node)
    centroid = ref.ijk_to_ras(np.argwhere(comp).mean(axis=0))
    n = int(comp.sum())
    return UncertainRegion(tuple(float(v) for v in centroid), note, decision=decision, rater=rater,
                           kind="component", segment_id=segment_id, voxels=n,
                           volume_ml=round(n * ref.voxel_volume_mm3 / 1000.0, 6),
                           picked_ras=tuple(float(v) for v in ras))


def jump_to(scene: Any, ras: Any, centered: bool = True) -> None:
    """Move every slice view to RAS ``ras`` (mm)."""
    x, y, z = (float(v) for v in ras)
    if centered:
        slicer.vtkMRMLSliceNode.JumpAllSlices(scene, x, y, z, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
    else:
        slicer.vtkMRMLSliceNode.JumpAllSlices(scene, x, y, z)
