"""Linked multi-sequence slice views of a case (consensus R11, R17), on a scene passed in.

What Slicer's application provides (application logic with its slice-link logic,
layout logic, one ``vtkMRMLSliceLogic`` per slice view) is wrapped by :class:`ViewLogics`:
inside Slicer pass ``slicer.app.applicationLogic()`` and the layout manager's layout logic;
on a bare ``slicer-core`` scene the same Slicer classes are instantiated here.

Linking uses Slicer's own mechanism: every AIS view is in one view group
(:data:`~.layouts.AIS_VIEW_GROUP`) and its slice composite node has ``LinkedControl`` and
``HotLinkedControl`` on, so ``vtkMRMLSliceLinkLogic`` copies slice position, pan and zoom
from the view being interacted with to the others; a crosshair jump
(shift-move) calls ``vtkMRMLSliceNode::JumpAllSlices`` for the group.

Sequences on other grids (FLAIR, T1, T2) are background volumes on their own grid; the
slice logic reslices them in physical space, nothing is resampled for display.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import slicer
import vtk

from AISAnnotationLib.display import ADC_DISPLAY_RANGE, SEQUENCE_LABELS, adc_color_table, sequence_preset

from .layouts import AIS_VIEW_GROUP, LAYOUTS, LayoutSpec, layout_for, register_layouts
from .volumes import array_from_image_data

GREY_NAME = "Grey"
ADC_COLOR_NAME = "AIS ADC 620"
DEFAULT_VIEW_SIZE = (256, 256)


class ViewLogics:
    """Application, layout and slice logics of ``scene`` (Slicer's, or created on a bare scene).

    Args:
        scene: the ``vtkMRMLScene``.
        app_logic: Slicer's ``vtkMRMLApplicationLogic`` (``slicer.app.applicationLogic()``);
            None creates one on ``scene`` (it owns the ``vtkMRMLSliceLinkLogic``).
        layout_logic: Slicer's ``vtkMRMLLayoutLogic``; None creates one.
        create_slice_logics: create a ``vtkMRMLSliceLogic`` for every slice view that has none
            (headless). Inside Slicer the layout manager's slice widgets own them: pass False.
    """

    def __init__(self, scene: Any, app_logic: Any = None, layout_logic: Any = None,
                 create_slice_logics: bool = True) -> None:
        self.scene = scene
        self._own_app_logic = app_logic is None
        self._own_layout_logic = layout_logic is None
        if app_logic is None:
            app_logic = slicer.vtkMRMLApplicationLogic()
            app_logic.SetMRMLScene(scene)
        self.app_logic = app_logic
        if layout_logic is None:
            layout_logic = slicer.vtkMRMLLayoutLogic()
            layout_logic.SetMRMLApplicationLogic(app_logic)
            layout_logic.SetMRMLScene(scene)
        self.layout_logic = layout_logic
        self.create_slice_logics = create_slice_logics
        self._owned_logics = vtk.vtkCollection()
        register_layouts(self.layout_node)

    @property
    def layout_node(self) -> Any:
        return self.layout_logic.GetLayoutNode()

    def set_layout(self, layout_id: int) -> LayoutSpec:
        """Show layout ``layout_id`` (creates its view nodes) and make sure each view has a slice logic."""
        register_layouts(self.layout_node)
        self.layout_node.SetViewArrangement(layout_id)
        spec = LAYOUTS[layout_id]
        if self.create_slice_logics:
            for v in spec.views:
                self._ensure_slice_logic(v.name)
        return spec

    def _ensure_slice_logic(self, name: str) -> Any:
        node = self.slice_node(name)
        if node is None:
            raise KeyError(f"no slice view {name!r} in the scene (is its layout shown?)")
        logic = self.app_logic.GetSliceLogic(node)
        if logic is None:
            logic = slicer.vtkMRMLSliceLogic()
            logic.SetMRMLApplicationLogic(self.app_logic)
            logic.SetMRMLScene(self.scene)
            logic.SetSliceNode(node)
            node.SetDimensions(DEFAULT_VIEW_SIZE[0], DEFAULT_VIEW_SIZE[1], 1)
            self._owned_logics.AddItem(logic)
            all_logics = vtk.vtkCollection()
            existing = self.app_logic.GetSliceLogics()
            if existing is not None:
                for i in range(existing.GetNumberOfItems()):
                    all_logics.AddItem(existing.GetItemAsObject(i))
            all_logics.AddItem(logic)
            self.app_logic.SetSliceLogics(all_logics)
        return logic

    def slice_node(self, name: str) -> Any:
        return slice_node_by_layout_name(self.scene, name)

    def slice_logic(self, name: str) -> Any:
        node = self.slice_node(name)
        return None if node is None else self.app_logic.GetSliceLogic(node)

    def composite_node(self, name: str) -> Any:
        node = self.slice_node(name)
        return None if node is None else composite_node_for(self.scene, node)

    def set_slice_offset(self, name: str, offset: float) -> None:
        """Move view ``name`` to ``offset`` mm along its normal as the slice slider does (linked views follow)."""
        logic = self.slice_logic(name)
        logic.StartSliceOffsetInteraction()
        logic.SetSliceOffset(float(offset))
        logic.EndSliceOffsetInteraction()

    def jump_to_ras(self, ras: Sequence[float], centered: bool = False) -> None:
        """Crosshair jump (shift-move): put the crosshair at ``ras`` and move every AIS view there."""
        jump_to_ras(self.scene, ras, centered=centered)

    def fit_linked(self, name: str) -> None:
        """Fit view ``name`` to its background and give the linked views the same field of view and centre."""
        logic = self.slice_logic(name)
        flags = (slicer.vtkMRMLSliceNode.FieldOfViewFlag | slicer.vtkMRMLSliceNode.XYZOriginFlag
                 | slicer.vtkMRMLSliceNode.SliceToRASFlag)
        logic.StartSliceNodeInteraction(flags)
        logic.FitSliceToBackground()
        logic.GetSliceNode().UpdateMatrices()
        logic.EndSliceNodeInteraction()

    def close(self) -> None:
        """Detach every logic this object created from the scene.

        Call it before ``scene.Clear(1)`` or discarding the scene: logics still observing a
        scene whose singletons are being removed crash VTK. Logics passed in (Slicer's) stay.
        """
        if self._own_layout_logic:
            self.layout_logic.SetMRMLScene(None)
        if self._own_app_logic:
            self.app_logic.SetMRMLScene(None)
        for i in range(self._owned_logics.GetNumberOfItems()):
            self._owned_logics.GetItemAsObject(i).SetMRMLScene(None)
        self._owned_logics.RemoveAllItems()
        if self._own_app_logic:
            self.app_logic.SetSliceLogics(None)

    def __enter__(self) -> ViewLogics:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def slice_node_by_layout_name(scene: Any, name: str) -> Any:
    nodes = scene.GetNodesByClass("vtkMRMLSliceNode")
    for i in range(nodes.GetNumberOfItems()):
        n = nodes.GetItemAsObject(i)
        if n.GetLayoutName() == name:
            return n
    return None


def composite_node_for(scene: Any, slice_node: Any) -> Any:
    """The slice composite node of ``slice_node`` (created like Slicer does when the view has none yet)."""
    node = slicer.vtkMRMLSliceLogic.GetSliceCompositeNode(slice_node)
    if node is None:
        node = slicer.vtkMRMLSliceCompositeNode()
        node.SetLayoutName(slice_node.GetLayoutName())
        node.SetSingletonTag(slice_node.GetLayoutName())
        node = scene.AddNode(node)
    return node


def jump_to_ras(scene: Any, ras: Sequence[float], centered: bool = False,
                view_group: int = AIS_VIEW_GROUP) -> None:
    """Slicer's crosshair jump: crosshair to ``ras`` and ``JumpAllSlices`` for the view group."""
    r, a, s = (float(x) for x in ras)
    crosshair = scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    if crosshair is None:
        crosshair = slicer.vtkMRMLCrosshairNode()
        crosshair.SetSingletonTag("default")
        crosshair = scene.AddNode(crosshair)
    crosshair.SetCrosshairRAS(r, a, s)
    mode = slicer.vtkMRMLSliceNode.CenteredJumpSlice if centered else slicer.vtkMRMLSliceNode.OffsetJumpSlice
    slicer.vtkMRMLSliceNode.JumpAllSlices(scene, r, a, s, mode, view_group, None)


# --------------------------------------------------------------------------- colour tables and presets

def ensure_grey_color_node(scene: Any) -> Any:
    """Slicer's "Grey" colour table (created on a bare scene, where no colour logic has run)."""
    node = scene.GetNodeByID("vtkMRMLColorTableNodeGrey") or scene.GetFirstNodeByName(GREY_NAME)
    if node is None:
        node = slicer.vtkMRMLColorTableNode()
        node.SetTypeToGrey()
        node.SetName(GREY_NAME)
        node.SetAttribute("AIS.colorTable", "grey")
        node = scene.AddNode(node)
    return node


def ensure_adc_color_node(scene: Any, value_range: Sequence[float] = ADC_DISPLAY_RANGE) -> Any:
    """Colour table for ADC on ``value_range`` (default 0–2000×10⁻⁶ mm²/s): grey, tinted blue below 620
    (see ``display.adc_color_table``); Slicer spreads a table over the window, so one table per range."""
    lo, hi = (float(v) for v in value_range)
    name = ADC_COLOR_NAME if (lo, hi) == tuple(ADC_DISPLAY_RANGE) else f"{ADC_COLOR_NAME} ({lo:g}-{hi:g})"
    node = scene.GetFirstNodeByName(name)
    if node is None:
        table = adc_color_table(value_range=(lo, hi))
        node = slicer.vtkMRMLColorTableNode()
        node.SetName(name)
        node.SetTypeToUser()
        node.SetNumberOfColors(len(table))
        for i, (r, g, b, a) in enumerate(table):
            node.SetColor(i, f"{i}", float(r), float(g), float(b), float(a))
        node.SetAttribute("AIS.colorTable", "adc620")
        node = scene.AddNode(node)
    return node


def apply_presets(scene: Any, nodes: dict[str, Any], brain: Optional[np.ndarray] = None) -> dict[str, Any]:
    """Window/level (and the ADC colour table) on each volume's display node; returns key → preset.

    ``brain`` is the brain mask on the DWI grid; it is used for every volume on that grid
    (others are windowed on their non-zero voxels).
    """
    grey = ensure_grey_color_node(scene)
    presets = {}
    for key, node in nodes.items():
        if node is None or node.GetImageData() is None or node.IsA("vtkMRMLLabelMapVolumeNode"):
            continue
        arr = array_from_image_data(node.GetImageData())
        preset = sequence_preset(key, arr, brain if brain is not None and brain.shape == arr.shape else None)
        dn = node.GetDisplayNode()
        if dn is None:
            node.CreateDefaultDisplayNodes()
            dn = node.GetDisplayNode()
        color = ensure_adc_color_node(scene) if preset.color_table == "adc620" else grey
        dn.SetAndObserveColorNodeID(color.GetID())
        dn.SetAutoWindowLevel(0)
        dn.SetWindowLevelMinMax(preset.lower, preset.upper)
        presets[key] = preset
    return presets


def set_display_preset(scene: Any, node: Any, preset: Any) -> None:
    """Show ``node`` with ``preset`` (a ``display.DisplayPreset``): its window and colour table."""
    dn = node.GetDisplayNode()
    if dn is None:
        node.CreateDefaultDisplayNodes()
        dn = node.GetDisplayNode()
    color = (ensure_adc_color_node(scene, (preset.lower, preset.upper)) if preset.color_table == "adc620"
             else ensure_grey_color_node(scene))
    dn.SetAndObserveColorNodeID(color.GetID())
    dn.SetAutoWindowLevel(0)
    dn.SetWindowLevelMinMax(preset.lower, preset.upper)


# --------------------------------------------------------------------------- view assignment

def view_label(content: str, present: bool) -> str:
    base = {"review_a": "DWI + annotator A", "review_b": "DWI + annotator B",
            "disagreement": "Disagreement A vs B"}.get(content, SEQUENCE_LABELS.get(content, content))
    return base if present else f"{base} (missing)"


def assign_views(scene: Any, spec: LayoutSpec, nodes: dict[str, Any],
                 overlays: Optional[dict[str, Any]] = None) -> dict[str, dict[str, Any]]:
    """Put each view's volume in its composite node, label the view, and link it.

    ``nodes``: sequence key → volume node (absent keys give an empty view labelled
    "(missing)"). ``overlays``: optional "disagreement" → labelmap/scalar volume node shown
    over DWI in the disagreement view. Returns view name → what it shows.
    """
    overlays = overlays or {}
    out: dict[str, dict[str, Any]] = {}
    for v in spec.views:
        sn = slice_node_by_layout_name(scene, v.name)
        if sn is None:
            raise KeyError(f"view {v.name} of layout {spec.name!r} does not exist; show the layout first")
        cn = composite_node_for(scene, sn)
        vol = nodes.get(v.sequence)
        over = overlays.get(v.content) if v.content == "disagreement" else None
        present = vol is not None and (v.content not in ("disagreement", "review_a", "review_b")
                                       or overlays.get(v.content) is not None)
        wasModifying = cn.StartModify()
        cn.SetBackgroundVolumeID(vol.GetID() if vol is not None else None)
        cn.SetForegroundVolumeID(None)
        cn.SetLabelVolumeID(None)
        if over is not None:
            if over.IsA("vtkMRMLLabelMapVolumeNode"):
                cn.SetLabelVolumeID(over.GetID())
                cn.SetLabelOpacity(0.6)
            else:
                cn.SetForegroundVolumeID(over.GetID())
                cn.SetForegroundOpacity(0.5)
        cn.SetLinkedControl(1)
        cn.SetHotLinkedControl(1)
        cn.EndModify(wasModifying)
        label = view_label(v.content, present)
        sn.SetLayoutLabel(label)
        sn.SetViewGroup(AIS_VIEW_GROUP)
        sn.SetAttribute("AIS.content", v.content)
        sn.SetAttribute("AIS.missing", "0" if present else "1")
        out[v.name] = {"content": v.content, "sequence": v.sequence, "label": label, "missing": not present,
                       "volume_id": vol.GetID() if vol is not None else None,
                       "volume_name": vol.GetName() if vol is not None else None,
                       "slice_node_id": sn.GetID(), "composite_node_id": cn.GetID()}
    return out


def show_segmentation(seg_node: Any, fill_view_ids: list[str], outline_view_ids: list[str],
                      segment_ids: Optional[list[str]] = None) -> tuple[Any, Any]:
    """Lesion segmentation filled in ``fill_view_ids`` (DWI) and outlined in ``outline_view_ids``.

    A segmentation display node applies to the views listed in its ViewNodeIDs, so the
    segmentation gets two display nodes: its default one (fill + outline; restricted to the
    fill views and any 3D views) and an outline-only one for the other views. Returns
    (fill display node, outline display node). ``segment_ids`` restricts the outline display
    to some segments (review: one annotator per view).
    """
    scene = seg_node.GetScene()
    if seg_node.GetDisplayNode() is None:
        seg_node.CreateDefaultDisplayNodes()
    fill = seg_node.GetDisplayNode()
    outline = None
    for i in range(seg_node.GetNumberOfDisplayNodes()):
        dn = seg_node.GetNthDisplayNode(i)
        if dn is not None and dn.GetAttribute("AIS.segmentationStyle") == "outline":
            outline = dn
    if outline is None:
        outline = scene.AddNewNodeByClass("vtkMRMLSegmentationDisplayNode", f"{seg_node.GetName()} outline")
        outline.SetAttribute("AIS.segmentationStyle", "outline")
        seg_node.AddAndObserveDisplayNodeID(outline.GetID())
    fill.SetAttribute("AIS.segmentationStyle", "fill")
    three_d = [scene.GetNthNodeByClass(i, "vtkMRMLViewNode").GetID()
               for i in range(scene.GetNumberOfNodesByClass("vtkMRMLViewNode"))]
    fill_ids = list(fill_view_ids) + three_d
    fill.SetViewNodeIDs(fill_ids)  # an empty list would mean "every view": hide instead
    fill.SetVisibility(1 if fill_ids else 0)
    fill.SetVisibility2DFill(1)
    fill.SetVisibility2DOutline(1)
    outline.SetViewNodeIDs(list(outline_view_ids))
    outline.SetVisibility(1 if outline_view_ids else 0)
    outline.SetVisibility2DFill(0)
    outline.SetVisibility2DOutline(1)
    outline.SetVisibility3D(0)
    outline.SetSliceIntersectionThickness(2)
    if segment_ids is not None:
        segmentation = seg_node.GetSegmentation()
        for sid in segmentation.GetSegmentIDs():
            outline.SetSegmentVisibility(sid, sid in segment_ids)
    return fill, outline


def align_views_to_volume(view_logics: ViewLogics, spec: LayoutSpec, volume_node: Any) -> None:
    """Rotate every view of ``spec`` to the closest axes of ``volume_node`` (Slicer's "rotate to volume plane").

    With the DWI as reference, the axial views show the DWI acquisition slices themselves
    (annotation is drawn slice by slice on DWI, R17) even when the acquisition is oblique;
    the other sequences are resliced on those same planes. All views get the same rotation,
    so Slicer's link logic (which links views of matching orientation) keeps linking them.
    """
    for v in spec.views:
        sn = view_logics.slice_node(v.name)
        if sn is not None:
            sn.SetOrientation(v.orientation)
            sn.RotateToVolumePlane(volume_node)


def show_case(view_logics: ViewLogics, nodes: dict[str, Any], kind: str = "2x2",
              segmentation: Any = None, brain: Optional[np.ndarray] = None,
              overlays: Optional[dict[str, Any]] = None, layout_id: Optional[int] = None,
              align_to_dwi: bool = True) -> dict[str, Any]:
    """One action: layout ``kind`` shown, volumes assigned, views linked, presets applied,
    the segmentation filled on DWI and outlined elsewhere, views aligned with the DWI
    acquisition planes (``align_to_dwi``), fitted and centred on DWI.

    Returns ``{"layout_id", "layout", "views": view → info, "presets": key → DisplayPreset}``.
    """
    spec = LAYOUTS[layout_id] if layout_id is not None else layout_for(kind, [k for k, n in nodes.items() if n])
    view_logics.set_layout(spec.id)
    views = assign_views(view_logics.scene, spec, nodes, overlays)
    presets = apply_presets(view_logics.scene, nodes, brain)
    if segmentation is not None:
        fill_ids = [views[v.name]["slice_node_id"] for v in spec.views if v.content == "dwi"]
        outline_ids = [views[v.name]["slice_node_id"] for v in spec.views
                       if v.content not in ("dwi", "review_a", "review_b")]
        show_segmentation(segmentation, fill_ids, outline_ids)
    for content in ("review_a", "review_b"):  # one annotator's outline per review view
        seg = (overlays or {}).get(content)
        if seg is not None:
            ids = [views[v.name]["slice_node_id"] for v in spec.views if v.content == content]
            show_segmentation(seg, [], ids)
    if align_to_dwi and nodes.get("dwi") is not None:
        align_views_to_volume(view_logics, spec, nodes["dwi"])
    fit_case_views(view_logics, spec, nodes.get("dwi"))
    return {"layout_id": spec.id, "layout": spec.name, "views": views, "presets": presets}


def fit_case_views(view_logics: ViewLogics, spec: LayoutSpec, dwi_node: Any) -> bool:
    """Fit the linked views of ``spec`` to the DWI and put the crosshair at its centre.

    Needs the views' slice logics (a browser client calls it again once its views have their
    size); returns False when the DWI view has no slice logic yet.
    """
    dwi_view = next((v.name for v in spec.views if v.sequence == "dwi" and v.orientation == "Axial"), None)
    if dwi_view is None or dwi_node is None or view_logics.slice_logic(dwi_view) is None:
        return False
    view_logics.fit_linked(dwi_view)
    for v in spec.views:  # views in other planes fit their own background (link copies FOV only per plane)
        if v.orientation != "Axial" and view_logics.slice_logic(v.name) is not None:
            view_logics.slice_logic(v.name).FitSliceToBackground()
    view_logics.jump_to_ras(_volume_center_ras(dwi_node))
    return True


def _volume_center_ras(node: Any) -> list[float]:
    """RAS of the voxel at the volume's centre (a voxel centre: the views then cut through one DWI slice,
    never between two, so a stroke there paints exactly that slice)."""
    from .volumes import ijk_to_ras_affine

    dims = node.GetImageData().GetDimensions()
    ijk = np.array([n // 2 for n in dims] + [1], dtype=float)
    return [float(v) for v in (ijk_to_ras_affine(node) @ ijk)[:3]]


def resliced_array(slice_logic: Any, layer: str = "background") -> Optional[np.ndarray]:
    """The layer's resliced scalar image of a view as [y, x] (pixel (x, y) ↦ XYToRAS·(x, y, 0, 1)).

    This is the image the slice logic gives the view before window/level; None when the
    layer has no volume.
    """
    lay = {"background": slice_logic.GetBackgroundLayer, "foreground": slice_logic.GetForegroundLayer,
           "label": slice_logic.GetLabelLayer}[layer]()
    if lay is None or lay.GetVolumeNode() is None:
        return None
    reslice = lay.GetReslice()
    reslice.Update()
    img = reslice.GetOutput()
    w, h, _ = img.GetDimensions()
    arr = array_from_image_data(img)  # [x, y, z]
    return np.ascontiguousarray(arr[:, :, 0].T.reshape(h, w))


def displayed_rgba(slice_logic: Any, layer: str = "background") -> Optional[np.ndarray]:
    """The layer's windowed, colour-mapped RGBA (uint8 [y, x, 4]) as the slice logic produces it."""
    lay = {"background": slice_logic.GetBackgroundLayer, "foreground": slice_logic.GetForegroundLayer,
           "label": slice_logic.GetLabelLayer}[layer]()
    if lay is None or lay.GetVolumeNode() is None:
        return None
    conn = lay.GetImageDataConnection()
    producer = conn.GetProducer()
    producer.Update()
    img = producer.GetOutputDataObject(conn.GetIndex())
    w, h, _ = img.GetDimensions()
    from vtk.util import numpy_support

    flat = numpy_support.vtk_to_numpy(img.GetPointData().GetScalars())
    return np.array(flat.reshape(h, w, -1))


def xy_to_ras(slice_node: Any) -> np.ndarray:
    m = slice_node.GetXYToRAS()
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
