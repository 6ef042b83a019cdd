"""Linked AIS views on a bare MRML scene with Slicer's own layout, slice and slice-link logic (case 0009)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from aistest import ISLES_SES, ISLES_SUB

pytest.importorskip("slicer", reason="slicer-core is not installed")

from scipy import ndimage  # noqa: E402

from AISAnnotationLib import bids  # noqa: E402
from AISAnnotationLib.case import load_case  # noqa: E402
from AISAnnotationLib.masks import read_mask  # noqa: E402
from AISAnnotationMRML import layouts  # noqa: E402
from AISAnnotationMRML.case_nodes import add_mask_segmentation, load_case_nodes  # noqa: E402
from AISAnnotationMRML.views import ViewLogics, displayed_rgba, resliced_array, show_case, xy_to_ras  # noqa: E402
from AISAnnotationMRML.volumes import array_from_image_data, ijk_to_ras_affine  # noqa: E402

CORE = {"AIS-DWI": "dwi", "AIS-ADC": "adc", "AIS-eADC": "eadc", "AIS-FLAIR": "flair"}


@pytest.fixture(scope="module")
def expert_mask(isles_bids, isles_case):
    return read_mask(bids.lesion_mask_path(isles_bids, ISLES_SUB, ISLES_SES, desc=bids.REFERENCE_DESC),
                     isles_case.reference)


@pytest.fixture
def logics(scene):
    vl = ViewLogics(scene)
    yield vl
    vl.close()  # before the scene fixture clears the scene


@pytest.fixture
def shown(logics, isles_case):
    nodes = load_case_nodes(logics.scene, isles_case)
    info = show_case(logics, nodes, "2x2", brain=isles_case.brain_mask())
    return logics, nodes, info


def _sample(node, ras_points):
    """Trilinear sample of a volume node's voxels at RAS points (N×3); NaN outside the voxel centres' hull."""
    arr = array_from_image_data(node.GetImageData()).astype(float)
    ijk = (np.linalg.inv(ijk_to_ras_affine(node)) @ np.c_[ras_points, np.ones(len(ras_points))].T)[:3]
    inside = np.all((ijk >= 0) & (ijk <= (np.array(arr.shape) - 1)[:, None]), axis=0)
    out = np.full(len(ras_points), np.nan)
    out[inside] = ndimage.map_coordinates(arr, ijk[:, inside], order=1)
    return out


def _pixel_ras(slice_node, shape):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    xy = np.c_[xx.ravel(), yy.ravel(), np.zeros(h * w), np.ones(h * w)]
    return (xy_to_ras(slice_node) @ xy.T).T[:, :3]


def _slicer_xy_to_ijk(slice_node, volume_node, shape):
    """IJK of every pixel as Slicer's slice layer computes it, and the largest distance (mm) to the exact IJK.

    vtkMRMLSliceLayerLogic::UpdateTransforms builds XY→IJK = RASToIJK·XYToRAS and then
    ``SnapToPermuteMatrix``: each element smaller than 1e-3 × the largest of its column is set
    to 0 so that vtkImageReslice can use its faster axis-aligned path.
    """
    affine = ijk_to_ras_affine(volume_node)
    exact = np.linalg.inv(affine) @ xy_to_ras(slice_node)
    snap = exact.copy()
    for c in range(3):
        col = np.abs(snap[:3, c])
        snap[:3, c][(col != 0) & (col < 1e-3 * col.max())] = 0.0
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    xy = np.c_[xx.ravel(), yy.ravel(), np.zeros(h * w), np.ones(h * w)].T
    ijk_snap, ijk_exact = (snap @ xy)[:3], (exact @ xy)[:3]
    shift = np.linalg.norm(affine[:3, :3] @ (ijk_snap - ijk_exact), axis=0).max()
    return ijk_snap.T, float(shift)


def test_layouts_registered_once_and_survive_scene_clear(logics):
    node = logics.layout_node
    for spec in layouts.LAYOUTS.values():
        assert node.IsLayoutDescription(spec.id), spec.name
        assert node.GetLayoutDescription(spec.id) == spec.xml()
    assert len({s.id for s in layouts.LAYOUTS.values()}) == len(layouts.LAYOUTS)
    layouts.register_layouts(node)  # idempotent
    logics.scene.Clear(0)
    assert logics.layout_node is node
    assert all(node.IsLayoutDescription(i) for i in layouts.LAYOUTS)
    # Slicer parses our XML into view nodes: 3-plane layout has the three orientations in the AIS group
    spec = logics.set_layout(layouts.AIS_3PLANE)
    assert node.GetViewArrangement() == layouts.AIS_3PLANE
    for v in spec.views:
        sn = logics.slice_node(v.name)
        assert sn.GetOrientation() == v.orientation
        assert sn.GetViewGroup() == layouts.AIS_VIEW_GROUP
        assert logics.slice_logic(v.name) is not None


def test_case_views_show_the_right_volumes_linked(shown):
    logics, nodes, info = shown
    assert logics.layout_node.GetViewArrangement() == layouts.AIS_2X2
    assert info["layout_id"] == layouts.AIS_2X2
    for view, key in CORE.items():
        cn = logics.composite_node(view)
        assert cn.GetBackgroundVolumeID() == nodes[key].GetID(), view
        assert cn.GetLinkedControl() == 1 and cn.GetHotLinkedControl() == 1
        sn = logics.slice_node(view)
        assert sn.GetViewGroup() == layouts.AIS_VIEW_GROUP
        assert sn.GetLayoutLabel() == info["views"][view]["label"]
        assert not info["views"][view]["missing"]
    assert [logics.slice_node(v).GetLayoutLabel() for v in CORE] == ["DWI b1000", "ADC", "eADC", "FLAIR"]
    # standard views are not in the AIS group, so our linking never moves them
    red = logics.scene.GetNodeByID("vtkMRMLSliceNodeRed")
    assert red is None or red.GetViewGroup() != layouts.AIS_VIEW_GROUP


def test_moving_one_view_moves_all_and_each_reslices_its_own_volume(shown, expert_mask, isles_case):
    logics, nodes, info = shown
    ref = isles_case.reference
    k = int(np.argmax(expert_mask.sum(axis=(0, 1))))
    # views are aligned with the (oblique) DWI acquisition: offset of the plane through DWI slice k
    normal = np.array([logics.slice_node("AIS-ADC").GetSliceToRAS().GetElement(r, 2) for r in range(3)])
    target = float(normal @ (ref.affine @ [56, 56, k, 1])[:3])
    before = {v: logics.slice_logic(v).GetSliceOffset() for v in CORE}
    logics.set_slice_offset("AIS-ADC", target)  # the slice slider of the ADC view
    for view in CORE:
        assert logics.slice_logic(view).GetSliceOffset() == pytest.approx(target, abs=1e-6), view
        assert before[view] != pytest.approx(target)
    xy0 = xy_to_ras(logics.slice_node("AIS-DWI"))
    shifts = {}
    for view, key in CORE.items():
        sn = logics.slice_node(view)
        # same in-plane position, pan and zoom (column 2 is each view's own slice thickness)
        np.testing.assert_allclose(xy_to_ras(sn)[:, [0, 1, 3]], xy0[:, [0, 1, 3]], atol=1e-6)
        img = resliced_array(logics.slice_logic(view))
        ras = _pixel_ras(sn, img.shape)
        dwi_k = (np.linalg.inv(ref.affine) @ np.c_[ras, np.ones(len(ras))].T)[2]
        np.testing.assert_allclose(dwi_k, k, atol=1e-6)  # every pixel lies on DWI slice k
        # exact reference: trilinear sampling of the view's own volume at RAS = XYToRAS·(x, y, 0)
        want = _sample(nodes[key], ras).reshape(img.shape)
        ok = np.isfinite(want)
        assert ok.sum() > 0.2 * ok.size, view
        got, exact = img[ok].astype(float), want[ok]
        scale = float(np.abs(exact).max()) or 1.0
        assert np.corrcoef(got, exact)[0, 1] > 0.995, view
        assert np.abs(got - exact).mean() < 0.01 * scale, view
        # Slicer's slice layer snaps XY→IJK matrix elements below 1e-3 of their column's
        # largest to 0 (SnapToPermuteMatrix, a reslice speed-up): with that matrix the match is
        # to float precision, and the snap moves no sample by more than 0.5 mm
        snapped, shift_mm = _slicer_xy_to_ijk(sn, nodes[key], img.shape)
        assert shift_mm < 0.5, (view, shift_mm)
        ijk = snapped.reshape(img.shape + (3,))[ok]
        arr = array_from_image_data(nodes[key].GetImageData()).astype(float)
        inside = np.all((ijk >= 0) & (ijk <= np.array(arr.shape) - 1), axis=1)
        ref_vals = ndimage.map_coordinates(arr, ijk[inside].T, order=1)
        np.testing.assert_allclose(got[inside], ref_vals, atol=1e-5 * scale, err_msg=view)
        shifts[view] = shift_mm
    assert shifts["AIS-DWI"] == pytest.approx(0, abs=1e-6)  # DWI grid: nothing to snap
    # FLAIR is shown on its own (512×512×29, 0.45 mm) grid, never resampled to DWI
    flair = nodes["flair"]
    assert flair.GetImageData().GetDimensions() == isles_case.images["flair"].shape3
    assert flair.GetImageData().GetDimensions() != ref.shape3


def test_zoom_and_pan_are_linked(shown):
    logics, _, _ = shown
    import slicer

    logic = logics.slice_logic("AIS-FLAIR")
    sn = logic.GetSliceNode()
    logic.StartSliceNodeInteraction(slicer.vtkMRMLSliceNode.FieldOfViewFlag | slicer.vtkMRMLSliceNode.XYZOriginFlag)
    fov = sn.GetFieldOfView()
    sn.SetFieldOfView(fov[0] / 2, fov[1] / 2, fov[2])
    sn.SetXYZOrigin(12.0, -7.0, 0.0)
    logic.EndSliceNodeInteraction()
    for view in CORE:
        other = logics.slice_node(view)
        assert other.GetFieldOfView()[0] == pytest.approx(fov[0] / 2)
        assert tuple(other.GetXYZOrigin()) == pytest.approx((12.0, -7.0, 0.0))


def test_crosshair_jump_moves_every_plane(logics, isles_case, expert_mask):
    nodes = load_case_nodes(logics.scene, isles_case)
    info = show_case(logics, nodes, "3plane")
    assert info["layout_id"] == layouts.AIS_3PLANE
    ijk = np.argwhere(expert_mask).mean(axis=0)
    ras = (isles_case.reference.affine @ [*ijk, 1])[:3]
    logics.jump_to_ras(ras)
    crosshair = logics.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    assert crosshair.GetCrosshairRAS() == pytest.approx(tuple(ras))
    for name, v in info["views"].items():
        sn = logics.slice_node(name)
        m = np.array([[sn.GetSliceToRAS().GetElement(r, c) for c in range(4)] for r in range(4)])
        in_plane = np.linalg.inv(m) @ [*ras, 1]
        assert in_plane[2] == pytest.approx(0, abs=1e-4), name  # the point is on every view's plane
        assert logics.composite_node(name).GetBackgroundVolumeID() == nodes[v["sequence"]].GetID()


def test_presets_adc_fixed_with_620_table_others_on_brain(shown, isles_case):
    logics, nodes, info = shown
    adc = nodes["adc"].GetDisplayNode()
    assert (adc.GetWindow(), adc.GetLevel()) == pytest.approx((2000.0, 1000.0))
    assert not adc.GetAutoWindowLevel()
    table = adc.GetColorNode()
    rgba_low, rgba_mid, rgba_high = ([0.0] * 4, [0.0] * 4, [0.0] * 4)
    n = table.GetNumberOfColors()
    table.GetColor(int(500 / 2000 * n), rgba_low)    # 500 < 620: tinted
    table.GetColor(int(700 / 2000 * n), rgba_mid)    # 700 > 620: grey
    table.GetColor(n - 1, rgba_high)
    assert rgba_low[2] > rgba_low[0] + 0.3
    assert rgba_mid[0] == pytest.approx(rgba_mid[2]) and rgba_high[:3] == pytest.approx([1, 1, 1])
    dwi_all = isles_case.reference.array
    for key in ("dwi", "eadc"):
        dn = nodes[key].GetDisplayNode()
        lo = dn.GetLevel() - dn.GetWindow() / 2
        hi = dn.GetLevel() + dn.GetWindow() / 2
        assert (lo, hi) == pytest.approx((info["presets"][key].lower, info["presets"][key].upper))
        assert lo > 0 and hi < float(isles_case.images[key].array.max())
    # a whole-image window would start at the background (0); ours starts inside the brain
    assert float(np.percentile(dwi_all, 1)) < info["presets"]["dwi"].lower
    # what Slicer's ADC view displays: sub-620 tissue blue, above it grey
    adc_logic = logics.slice_logic("AIS-ADC")
    values = resliced_array(adc_logic)
    rgba = displayed_rgba(adc_logic).astype(int)
    low = (values > 50) & (values < 580)
    high = values > 680
    assert low.sum() > 50 and high.sum() > 1000
    assert np.all(rgba[low][:, 2] > rgba[low][:, 0] + 40)
    assert np.all(np.abs(rgba[high][:, 2] - rgba[high][:, 0]) <= 1)


def test_segmentation_filled_on_dwi_outlined_elsewhere(logics, isles_case, expert_mask):
    nodes = load_case_nodes(logics.scene, isles_case)
    seg, _ = add_mask_segmentation(logics.scene, expert_mask, nodes["dwi"])
    info = show_case(logics, nodes, "2x2", segmentation=seg)
    styles = {}
    for i in range(seg.GetNumberOfDisplayNodes()):
        dn = seg.GetNthDisplayNode(i)
        styles[dn.GetAttribute("AIS.segmentationStyle")] = dn
    fill, outline = styles["fill"], styles["outline"]
    ids = {v: info["views"][v]["slice_node_id"] for v in CORE}
    assert fill.IsDisplayableInView(ids["AIS-DWI"]) and fill.GetVisibility2DFill()
    assert not any(fill.IsDisplayableInView(ids[v]) for v in ("AIS-ADC", "AIS-eADC", "AIS-FLAIR"))
    assert all(outline.IsDisplayableInView(ids[v]) for v in ("AIS-ADC", "AIS-eADC", "AIS-FLAIR"))
    assert not outline.IsDisplayableInView(ids["AIS-DWI"])
    assert outline.GetVisibility2DOutline() and not outline.GetVisibility2DFill()
    show_case(logics, nodes, "2x2", segmentation=seg)  # again: still two display nodes
    assert seg.GetNumberOfDisplayNodes() == 2


@pytest.fixture(scope="module")
def no_flair_root(isles_bids, tmp_path_factory):
    """A copy of the ISLES import without FLAIR (ADC present, eADC not on disk)."""
    root = tmp_path_factory.mktemp("noflair") / "bids"
    shutil.copytree(isles_bids, root)
    gone = [p for p in root.rglob("*FLAIR*") if p.is_file()]
    assert gone
    for p in gone:
        p.unlink()
    return root


def test_missing_flair_and_eadc_give_a_sensible_layout(logics, no_flair_root):
    case = load_case(no_flair_root, ISLES_SUB, ISLES_SES)
    assert "flair" not in case.images and "eadc" in case.derived
    nodes = load_case_nodes(logics.scene, case)
    info = show_case(logics, nodes, "2x2", brain=case.brain_mask())
    flair = info["views"]["AIS-FLAIR"]
    assert flair["missing"] and flair["label"] == "FLAIR (missing)"
    assert logics.composite_node("AIS-FLAIR").GetBackgroundVolumeID() is None
    assert logics.slice_node("AIS-FLAIR").GetLayoutLabel() == "FLAIR (missing)"
    assert logics.composite_node("AIS-eADC").GetBackgroundVolumeID() == nodes["eadc"].GetID()
    assert nodes["eadc"].GetAttribute("AIS.derived") == "1"
    logics.set_slice_offset("AIS-DWI", 10.0)  # linking still works with an empty view
    assert logics.slice_logic("AIS-FLAIR").GetSliceOffset() == pytest.approx(10.0)


def test_layout_choice_grows_with_t1_t2():
    assert layouts.layout_for("2x2", ["dwi", "adc", "eadc", "flair"]).id == layouts.AIS_2X2
    assert layouts.layout_for("2x2", ["dwi", "adc", "eadc", "flair", "t2w"]).id == layouts.AIS_ALL
    assert layouts.layout_for("3plane", ["dwi", "t1w"]).id == layouts.AIS_3PLANE_ALL
    with pytest.raises(ValueError, match="unknown layout"):
        layouts.layout_for("5x5")
    names = [v.name for v in layouts.LAYOUTS[layouts.AIS_REVIEW].views]
    assert names == ["AIS-ReviewA", "AIS-ReviewB", "AIS-ADC", "AIS-Disagreement"]


def test_review_layout_outlines_each_annotator_in_its_own_view(logics, isles_case, expert_mask):
    from AISAnnotationLib.image import Image
    from AISAnnotationMRML.volumes import image_to_volume_node

    nodes = load_case_nodes(logics.scene, isles_case, ["dwi", "adc"])
    seg_a, _ = add_mask_segmentation(logics.scene, expert_mask, nodes["dwi"], name="annotator A")
    info = show_case(logics, nodes, "review", overlays={"review_a": seg_a})
    assert info["views"]["AIS-ReviewB"]["label"] == "DWI + annotator B (missing)"
    assert info["views"]["AIS-Disagreement"]["missing"]
    b_mask = ndimage.binary_erosion(expert_mask)
    seg_b, _ = add_mask_segmentation(logics.scene, b_mask, nodes["dwi"], name="annotator B")
    diff = image_to_volume_node(logics.scene, Image((expert_mask ^ b_mask).astype(np.uint8),
                                                    isles_case.reference.affine), "A vs B", labelmap=True)
    info = show_case(logics, nodes, "review", overlays={"review_a": seg_a, "review_b": seg_b, "disagreement": diff})
    assert info["layout_id"] == layouts.AIS_REVIEW
    assert not any(v["missing"] for v in info["views"].values())
    assert logics.composite_node("AIS-Disagreement").GetLabelVolumeID() == diff.GetID()
    for v in ("AIS-ReviewA", "AIS-ReviewB", "AIS-Disagreement"):
        assert logics.composite_node(v).GetBackgroundVolumeID() == nodes["dwi"].GetID()
    ids = {v: info["views"][v]["slice_node_id"] for v in info["views"]}
    for seg, own in ((seg_a, "AIS-ReviewA"), (seg_b, "AIS-ReviewB")):
        shown_in = [v for v in ids if any(seg.GetNthDisplayNode(i).GetVisibility()
                                          and seg.GetNthDisplayNode(i).IsDisplayableInView(ids[v])
                                          for i in range(seg.GetNumberOfDisplayNodes()))]
        assert shown_in == [own], (seg.GetName(), shown_in)


def test_t1_t2_views_appear_when_present(logics, isles_case):
    nodes = load_case_nodes(logics.scene, isles_case, ["dwi", "adc", "eadc", "flair"])
    nodes["t2w"] = nodes["flair"]  # stands for a T2 on its own grid
    info = show_case(logics, nodes, "2x2")
    assert info["layout_id"] == layouts.AIS_ALL
    assert info["views"]["AIS-T2"]["label"] == "T2WI" and not info["views"]["AIS-T2"]["missing"]
    assert info["views"]["AIS-T1"]["label"] == "T1WI (missing)"
    assert logics.composite_node("AIS-T2").GetBackgroundVolumeID() == nodes["flair"].GetID()
