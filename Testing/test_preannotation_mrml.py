"""MRML glue of the pre-annotation effect on a bare slicer-core scene (no Slicer application)."""

from __future__ import annotations

import numpy as np
import pytest
from aistest_preannotate import affine, put, synthetic

pytest.importorskip("slicer")

from AISAnnotationLib.image import Image  # noqa: E402
from AISAnnotationLib.preannotate import PreannotationParameters  # noqa: E402
from AISAnnotationLib.uncertain import UncertainRegionList  # noqa: E402
from AISAnnotationMRML import preannotation_nodes as pn  # noqa: E402
from AISAnnotationMRML import uncertain_nodes as un  # noqa: E402
from AISAnnotationMRML.segmentations import new_segmentation_node, segment_to_mask  # noqa: E402
from AISAnnotationMRML.volumes import ijk_to_ras_affine, image_to_volume_node  # noqa: E402

P = PreannotationParameters(brain_erode_mm=0, min_volume_mm3=0, grow_steps=0)


def _nodes(scene):
    """DWI 2 mm grid; ADC in mm²/s on a 1 mm grid covering the same field of view."""
    adc, dwi, brain = synthetic()
    rng = np.random.default_rng(0)
    dwi.array[~brain] = rng.uniform(1, 5, int((~brain).sum()))  # noisy background around the brain box
    lesion = (slice(10, 14), slice(10, 14), slice(8, 11))  # 4×4×3 = 48 DWI voxels
    put(dwi, lesion, 200.0)
    adc_fine = np.full((80, 80, 40), 800e-6, dtype=np.float32)
    adc_fine[19:28, 19:28, 15:22] = 400e-6  # covers the lesion box once resampled
    fine = Image(adc_fine, affine((1.0, 1.0, 1.0), origin=(-40.5, -40.5, -20.5)), name="adc")
    dwi_node = image_to_volume_node(scene, dwi, "DWI")
    adc_node = image_to_volume_node(scene, fine, "ADC")
    expected = np.zeros(dwi.shape3, bool)
    expected[lesion] = True
    return dwi_node, adc_node, expected


def test_effect_result_lands_on_dwi_grid_although_adc_was_thresholded(scene):
    dwi_node, adc_node, expected = _nodes(scene)
    ctx = pn.context_from_nodes(adc_node, dwi_node, parameters=P)
    assert ctx.adc.shape == (40, 40, 20)  # ADC resampled onto the DWI grid
    assert 700 < np.median(ctx.adc[ctx.brain]) < 900  # mm²/s detected, converted to ×10⁻⁶
    result = ctx.compute(P)
    assert np.array_equal(result.mask, expected)
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Lesions")
    seg.CreateDefaultDisplayNodes()
    sid = pn.apply_mask_to_segment(seg, None, result.mask, dwi_node)
    back = segment_to_mask(seg, sid, dwi_node)
    assert np.array_equal(back, expected)
    # the segmentation's geometry is the DWI's, not the ADC's
    import slicer
    import vtk

    conv = slicer.vtkSegmentationConverter
    geom = slicer.vtkOrientedImageData()
    conv.DeserializeImageGeometry(seg.GetSegmentation().GetConversionParameter(
        conv.GetReferenceImageGeometryParameterName()), geom)
    assert geom.GetDimensions() == (40, 40, 20)
    m = vtk.vtkMatrix4x4()
    geom.GetImageToWorldMatrix(m)
    from AISAnnotationMRML.volumes import affine_from_matrix

    assert np.allclose(affine_from_matrix(m), ijk_to_ras_affine(dwi_node))  # 2 mm DWI, not the 1 mm ADC


def test_apply_modes_add_and_remove(scene):
    dwi_node, _, expected = _nodes(scene)
    seg = new_segmentation_node(scene, dwi_node)
    other = np.zeros_like(expected)
    other[30:32, 30:32, 5] = True
    sid = pn.apply_mask_to_segment(seg, None, other, dwi_node)
    pn.apply_mask_to_segment(seg, sid, expected, dwi_node, mode="add")
    assert segment_to_mask(seg, sid, dwi_node).sum() == other.sum() + expected.sum()
    pn.apply_mask_to_segment(seg, sid, other, dwi_node, mode="remove")
    assert np.array_equal(segment_to_mask(seg, sid, dwi_node), expected)
    with pytest.raises(Exception, match="differs from the DWI grid"):
        pn.apply_mask_to_segment(seg, sid, np.zeros((3, 3, 3), bool), dwi_node)


def test_preview_node_is_updated_in_place_on_dwi_geometry(scene):
    dwi_node, adc_node, expected = _nodes(scene)
    ctx = pn.context_from_nodes(adc_node, dwi_node, parameters=P)
    buf = ctx.preview(620.0, P.core_dwi_ratio)
    node = pn.update_preview_node(scene, buf, dwi_node)
    assert np.allclose(ijk_to_ras_affine(node), ijk_to_ras_affine(dwi_node))
    image_data = node.GetImageData()
    buf = ctx.preview(300.0, P.core_dwi_ratio, out=buf)  # nothing below 300
    assert pn.update_preview_node(scene, buf, dwi_node, node) is node
    assert node.GetImageData() is image_data
    from AISAnnotationMRML.volumes import array_from_image_data

    assert array_from_image_data(node.GetImageData()).sum() == 0
    buf = ctx.preview(620.0, P.core_dwi_ratio, out=buf)
    pn.update_preview_node(scene, buf, dwi_node, node)
    assert np.array_equal(array_from_image_data(node.GetImageData()) > 0, expected)
    comp = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    assert pn.show_preview_in_slice_views(scene, node) == 1
    assert comp.GetLabelVolumeID() == node.GetID()
    pn.remove_preview_node(scene, node)
    assert comp.GetLabelVolumeID() is None
    assert scene.GetNodesByName(pn.PREVIEW_NODE_NAME).GetNumberOfItems() == 0


def test_editable_intensity_range(scene):
    import slicer

    editor = slicer.vtkMRMLSegmentEditorNode()
    scene.AddNode(editor)
    pn.set_editable_intensity_range(editor, 130.0, 1000.0)
    assert editor.GetSourceVolumeIntensityMask()
    assert tuple(editor.GetSourceVolumeIntensityMaskRange()) == (130.0, 1000.0)
    pn.clear_editable_intensity_range(editor)
    assert not editor.GetSourceVolumeIntensityMask()
    with pytest.raises(Exception, match="lower < upper"):
        pn.set_editable_intensity_range(editor, 5.0, 5.0)


def test_uncertain_regions_from_markup_and_component(scene, tmp_path):
    dwi_node, _, expected = _nodes(scene)
    seg = new_segmentation_node(scene, dwi_node)
    two = expected.copy()
    two[30:32, 30:32, 5:7] = True  # a second, separate component of 8 voxels
    sid = pn.apply_mask_to_segment(seg, None, two, dwi_node)
    ras_small = (30.5 * 2 - 40, 30.5 * 2 - 40, 5.5 * 2 - 20)  # centre of the small component
    comp = un.region_from_segment_component(seg, sid, dwi_node, (20.0, 20.0, -10.0), "faint rim, FLAIR negative",
                                            decision="for-review", rater="r1")
    assert comp.voxels == 8 and comp.volume_ml == pytest.approx(0.064)
    assert comp.position_ras == pytest.approx(ras_small)
    with pytest.raises(Exception, match="no voxel"):
        un.region_from_segment_component(seg, sid, dwi_node, (0.0, 0.0, 0.0), "nothing here")
    markups = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "doubt")
    markups.AddControlPointWorld(1.0, 2.0, 3.0)
    point = un.region_from_markup_point(markups, 0, "perivascular space?", decision="excluded", rater="r1")
    assert point.position_ras == (1.0, 2.0, 3.0)
    regions = UncertainRegionList([comp, point])
    regions.save(tmp_path / "u.json")
    again = UncertainRegionList.load(tmp_path / "u.json")
    assert [r.to_dict() for r in again.regions] == [r.to_dict() for r in regions.regions]
    slice_node = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    slice_node.SetLayoutName("Red")
    slice_node.SetOrientationToAxial()
    un.jump_to(scene, again.listing()[1][2])
    m = slice_node.GetSliceToRAS()
    assert m.GetElement(2, 3) == pytest.approx(3.0)


def test_segmentation_geometry_moved_to_dwi_only_while_empty(scene):
    dwi_node, _, expected = _nodes(scene)
    adc, _, _ = synthetic(shape=(20, 20, 10), spacing=(4.0, 4.0, 4.0))
    coarse = image_to_volume_node(scene, adc, "other grid")
    seg = new_segmentation_node(scene, coarse)
    sid = seg.GetSegmentation().AddEmptySegment("lesion")
    assert pn.ensure_dwi_geometry(seg, dwi_node)
    assert seg.GetNodeReferenceID(seg.GetReferenceImageGeometryReferenceRole()) == dwi_node.GetID()
    pn.apply_mask_to_segment(seg, sid, expected, dwi_node)
    other = new_segmentation_node(scene, coarse, "drawn on another grid")
    full = np.zeros((20, 20, 10), bool)
    full[5:8, 5:8, 4:6] = True
    pn.apply_mask_to_segment(other, None, full, coarse)
    assert not pn.ensure_dwi_geometry(other, dwi_node)  # has content: left alone
    assert other.GetNodeReferenceID(other.GetReferenceImageGeometryReferenceRole()) == coarse.GetID()
