"""Binary masks ⇄ segments of a ``vtkMRMLSegmentationNode`` on the DWI grid."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import slicer
import vtk

from .volumes import array_from_image_data, ijk_to_ras_affine, image_data_from_array, matrix_from_affine

DEFAULT_COLOR = (0.9, 0.2, 0.2)


def ensure_segmentation_support() -> None:
    """Register the binary-labelmap ⇄ closed-surface converter rules once.

    Slicer's Segmentations module does this at application start-up; on a bare
    ``slicer-core`` scene nobody has, and segments cannot hold labelmaps until it is
    done. Idempotent: rules already present (inside Slicer) are left alone.
    """
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    have = {type(r).__name__ for r in factory.GetConverterRules()}
    for cls in ("vtkBinaryLabelmapToClosedSurfaceConversionRule", "vtkClosedSurfaceToBinaryLabelmapConversionRule"):
        if cls not in have:
            factory.RegisterConverterRule(getattr(slicer, cls)())


def _oriented(mask: np.ndarray, affine: np.ndarray) -> Any:
    oi = slicer.vtkOrientedImageData()
    oi.ShallowCopy(image_data_from_array(np.asarray(mask, dtype=np.uint8)))
    oi.SetImageToWorldMatrix(matrix_from_affine(affine))
    return oi


def new_segmentation_node(scene: Any, reference_node: Any, name: str = "Lesions") -> Any:
    """A segmentation node whose reference geometry is ``reference_node``'s grid (the DWI)."""
    ensure_segmentation_support()
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    seg.CreateDefaultDisplayNodes()
    seg.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    return seg


def set_segment_mask(seg_node: Any, mask: np.ndarray, reference_node: Any, segment_name: str = "lesion",
                     segment_id: Optional[str] = None, color: tuple[float, float, float] = DEFAULT_COLOR) -> str:
    """Write a boolean [i, j, k] mask (on ``reference_node``'s grid) into a segment; return its id.

    Creates the segment when ``segment_id`` is None or missing. Replaces its content.
    """
    ensure_segmentation_support()
    segmentation = seg_node.GetSegmentation()
    if segment_id is None or segmentation.GetSegment(segment_id) is None:
        segment_id = segmentation.AddEmptySegment(segment_id or "", segment_name, list(color))
    oi = _oriented(mask, ijk_to_ras_affine(reference_node))
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        oi, seg_node, segment_id, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE
    )
    return segment_id


def mask_to_segmentation_node(scene: Any, mask: np.ndarray, reference_node: Any, segment_name: str = "lesion",
                              name: str = "Lesions") -> tuple[Any, str]:
    """New segmentation node (DWI geometry) holding ``mask`` as one segment."""
    seg = new_segmentation_node(scene, reference_node, name)
    sid = set_segment_mask(seg, mask, reference_node, segment_name)
    return seg, sid


def segment_to_mask(seg_node: Any, segment_id: str, reference_node: Any) -> np.ndarray:
    """Boolean [i, j, k] mask of one segment, on ``reference_node``'s grid."""
    scene = seg_node.GetScene()
    lm = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__ais_export__")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(seg_node, ids, lm, reference_node)
        if not ok:
            raise RuntimeError(f"could not export segment {segment_id!r} of {seg_node.GetName()}")
        arr = array_from_image_data(lm.GetImageData())
        got = ijk_to_ras_affine(lm)
        want = ijk_to_ras_affine(reference_node)
        if arr.shape != tuple(reference_node.GetImageData().GetDimensions()) or not np.allclose(got, want, atol=1e-4):
            raise RuntimeError("exported labelmap is not on the reference grid")
        return arr > 0
    finally:
        if lm.GetDisplayNode() is not None:
            scene.RemoveNode(lm.GetDisplayNode())
        scene.RemoveNode(lm)
