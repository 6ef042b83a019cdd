"""MRML glue of the pre-annotation effect: arrays in/out of nodes, masks into segments on the DWI grid.

The math lives in :mod:`AISAnnotationLib.preannotate`; here volumes become :class:`Image` s
(ADC converted to ×10⁻⁶ mm²/s and resampled onto the DWI grid when needed), masks become
segment contents on the DWI geometry (whatever volume was thresholded), and the preview is a
labelmap node on the DWI grid updated in place.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import slicer
from vtk.util import numpy_support

from AISAnnotationLib.brain import brain_mask, erode_brain, foreground_mask
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters
from AISAnnotationLib.resample import resample_to
from AISAnnotationLib.units import adc_to_internal, detect_adc_unit

from .segmentations import ensure_segmentation_support, segment_to_mask, set_segment_mask
from .volumes import image_to_volume_node, volume_node_to_image

PREVIEW_NODE_NAME = "AIS pre-annotation preview"


def context_from_nodes(adc_node: Any, dwi_node: Any, b0_node: Optional[Any] = None,
                       parameters: Optional[PreannotationParameters] = None,
                       adc_unit: str = "auto") -> PreannotationContext:
    """Pre-annotation context from volume nodes; every array ends up on ``dwi_node``'s grid.

    The ADC may be in any supported unit (detected unless ``adc_unit`` is given) and on any grid
    (linearly resampled onto the DWI). The brain mask comes from ``b0_node`` when given.
    """
    p = parameters or PreannotationParameters()
    if adc_node is None or dwi_node is None:
        raise InputError("pre-annotation needs an ADC volume and a DWI (b1000) volume")
    dwi = volume_node_to_image(dwi_node, "dwi")
    adc = volume_node_to_image(adc_node, "adc")
    if not adc.same_grid(dwi):
        adc = resample_to(adc, dwi, "linear")
    src = dwi
    if b0_node is not None:
        b0 = volume_node_to_image(b0_node, "b0")
        src = b0 if b0.same_grid(dwi) else resample_to(b0, dwi, "linear")
    det = detect_adc_unit(adc.array, foreground_mask(src.array), override=adc_unit, what=adc_node.GetName())
    adc = adc_to_internal(adc, det)
    full = brain_mask(src)
    brain = erode_brain(full, src.spacing, p.brain_erode_mm)
    foci_brain = erode_brain(full, src.spacing, p.foci_brain_erode_mm)
    return PreannotationContext(adc, dwi, brain, p, foci_brain=foci_brain)


def update_preview_node(scene: Any, mask: np.ndarray, reference_node: Any, node: Optional[Any] = None) -> Any:
    """Show ``mask`` (uint8 [i, j, k] on ``reference_node``'s grid) in a labelmap node; reuse ``node``.

    When ``node`` already holds an image of the same size, its voxel buffer is overwritten in
    place (no new VTK allocation), which keeps slider-driven previews interactive.
    """
    mask = np.asarray(mask)
    if node is not None and node.GetImageData() is not None and \
            tuple(node.GetImageData().GetDimensions()) == mask.shape:
        scalars = node.GetImageData().GetPointData().GetScalars()
        view = numpy_support.vtk_to_numpy(scalars)
        if view.dtype == np.uint8:
            if mask.flags.f_contiguous and mask.dtype == np.uint8:
                view[...] = mask.ravel(order="F")  # same memory layout: a plain copy
            else:
                view.reshape(mask.shape, order="F")[...] = mask
            scalars.Modified()
            node.GetImageData().Modified()
            node.Modified()
            return node
    from AISAnnotationLib.image import Image

    ref = volume_node_to_image(reference_node)
    img = Image(array=mask.astype(np.uint8), affine=ref.affine, name=PREVIEW_NODE_NAME)
    return image_to_volume_node(scene, img, PREVIEW_NODE_NAME, node=node, labelmap=True)


def show_preview_in_slice_views(scene: Any, preview_node: Optional[Any], opacity: float = 0.6) -> int:
    """Put ``preview_node`` (or nothing, when None) in the label layer of every slice view; return count."""
    n = 0
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        comp = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        comp.SetLabelVolumeID(preview_node.GetID() if preview_node is not None else None)
        comp.SetLabelOpacity(opacity)
        n += 1
    return n


def remove_preview_node(scene: Any, node: Optional[Any]) -> None:
    if node is None or node.GetScene() is None:
        return
    show_preview_in_slice_views(scene, None)
    dn = node.GetDisplayNode()
    if dn is not None:
        scene.RemoveNode(dn)
    scene.RemoveNode(node)


def apply_mask_to_segment(seg_node: Any, segment_id: Optional[str], mask: np.ndarray, reference_node: Any,
                          mode: str = "set", segment_name: str = "lesion") -> str:
    """Write a mask on the DWI grid into a segment; return the segment id.

    Modes: "set" (replace the segment), "add" (union), "remove" (the segment minus ``mask``).
    The segmentation's reference geometry is set to the DWI when it has none yet, so the
    segment lives on the DWI grid even when another volume (the ADC) was thresholded.
    """
    if mode not in ("set", "add", "remove"):
        raise ValueError(f"mode must be set, add or remove, got {mode!r}")
    ensure_segmentation_support()
    mask = np.asarray(mask, dtype=bool)
    dims = tuple(reference_node.GetImageData().GetDimensions())
    if mask.shape != dims:
        raise InputError(f"mask shape {mask.shape} differs from the DWI grid {dims}")
    seg = seg_node.GetSegmentation()
    if seg.GetNumberOfSegments() == 0 or not seg_node.GetNodeReferenceID(
            seg_node.GetReferenceImageGeometryReferenceRole()):
        seg_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    exists = segment_id is not None and seg.GetSegment(segment_id) is not None
    if mode != "set" and exists:
        current = segment_to_mask(seg_node, segment_id, reference_node)
        mask = (current | mask) if mode == "add" else (current & ~mask)
    elif mode == "remove":
        mask = np.zeros(dims, dtype=bool)
    return set_segment_mask(seg_node, mask, reference_node, segment_name=segment_name, segment_id=segment_id)


def ensure_dwi_geometry(seg_node: Any, dwi_node: Any) -> bool:
    """Make the segmentation's reference geometry the DWI grid; True when it is (now) the DWI.

    Changed only while every segment is empty (a segment with content would be resampled);
    otherwise returns False and leaves the segmentation alone so the caller can warn.
    """
    role = seg_node.GetReferenceImageGeometryReferenceRole()
    if seg_node.GetNodeReferenceID(role) == dwi_node.GetID():
        return True
    seg = seg_node.GetSegmentation()
    name = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    for i in range(seg.GetNumberOfSegments()):
        rep = seg.GetNthSegment(i).GetRepresentation(name)
        if rep is not None and not rep.IsEmpty() and \
                segment_to_mask(seg_node, seg.GetNthSegmentID(i), dwi_node).any():
            return False
    seg_node.SetReferenceImageGeometryParameterFromVolumeNode(dwi_node)
    return True


def set_editable_intensity_range(editor_node: Any, lower: float, upper: float) -> None:
    """Restrict painting/erasing to source-volume (DWI) intensities in [lower, upper] (refine step)."""
    if not lower < upper:
        raise InputError(f"editable intensity range needs lower < upper, got {lower:g}, {upper:g}")
    editor_node.SourceVolumeIntensityMaskOn()
    editor_node.SetSourceVolumeIntensityMaskRange(float(lower), float(upper))


def clear_editable_intensity_range(editor_node: Any) -> None:
    editor_node.SourceVolumeIntensityMaskOff()


__all__ = [
    "PREVIEW_NODE_NAME", "context_from_nodes", "update_preview_node", "show_preview_in_slice_views",
    "remove_preview_node", "apply_mask_to_segment", "set_editable_intensity_range",
    "clear_editable_intensity_range", "modifier_labelmap", "ensure_dwi_geometry", "slicer",
]


def modifier_labelmap(mask: np.ndarray, reference_node: Any) -> Any:
    """``vtkOrientedImageData`` of a [i, j, k] mask with ``reference_node``'s (DWI) geometry.

    This is what ``modifySelectedSegmentByLabelmap`` of a segment editor effect takes; the
    segment editor then applies its masking settings and records the undo state.
    """
    from .segmentations import _oriented
    from .volumes import ijk_to_ras_affine

    return _oriented(np.asarray(mask, dtype=np.uint8), ijk_to_ras_affine(reference_node))
