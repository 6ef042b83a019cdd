"""The Slicer side of one browser user: a trame-slicer application (scene, views, segment editor).

Views come from the MRML bridge's AIS layouts (:mod:`AISAnnotationMRML.layouts`): each layout's
Slicer XML is registered with trame-slicer's :class:`~trame_slicer.core.LayoutManager`, whose
remote slice views (VTK render windows streamed as images) own the slice logics the bridge's
:class:`~AISAnnotationMRML.views.ViewLogics` drives. Nothing here decides a rule.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from AISAnnotationMRML import workspace
from AISAnnotationMRML.layouts import LAYOUTS, layout_for
from AISAnnotationMRML.views import ViewLogics, fit_case_views, xy_to_ras

#: trame-slicer's view streaming knobs (``register_rca_factories``). ``blur_fps`` equal to ``target_fps``: a view
#: the mouse is not over (every view while the page's sliders are moved) is not held back to 10 frames/s;
#: ``interactive_quality`` equal to the scheduler's still quality (90): one render and JPEG per change instead
#: of a low-quality frame followed by a full-quality re-render.
RCA_SETTINGS = {k: float(os.environ.get(f"AIS_RCA_{k.upper()}", v)) for k, v in
                {"target_fps": 30.0, "blur_fps": 30.0, "interactive_quality": 90}.items()}
RCA_SETTINGS["interactive_quality"] = int(RCA_SETTINGS["interactive_quality"])

#: Effects offered in the browser (trame-slicer's own segment editor effects).
EFFECTS = ("none", "paint", "erase", "draw", "scissors", "islands")


def quiet_slice_view_factory(server: Any) -> Any:
    """trame-slicer's remote slice-view factory, except that a view does not render while it is being built.

    trame-slicer 2.0.0 builds each view with direct rendering (a render on every update of its displayable
    managers, at 8× multisampling) until the view's RCA stream takes over: ~70 software renders per view, most
    of the app's start-up. The first frame the page shows is rendered by the stream when the page sends the
    view's size, so nothing it would show is lost (``benchmarks/bench_web_start.py`` measures the difference).
    """
    from trame_slicer.rca_view.rca_view_factory import RemoteViewFactory
    from trame_slicer.views import NoScheduleRendering, SliceView, ViewType

    def build(**kwargs: Any) -> Any:
        return SliceView(scheduled_render_strategy=NoScheduleRendering(), **kwargs)

    return RemoteViewFactory(server, build, ViewType.SLICE_VIEW, populate_view_ui_f=lambda *_a: None, **RCA_SETTINGS)


def js_safe(name: str) -> str:
    """A view name as a JavaScript identifier (trame state keys are used in Vue expressions)."""
    return name.replace("-", "_")


class WebScene:
    """trame-slicer application objects for one user: scene, remote views, layouts, segment editor."""

    def __init__(self, server: Any, role: str = "annotator") -> None:
        from trame_rca import module as trame_rca_module
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories
        from trame_slicer.views import slicer_layout_to_vue
        from undo_stack import UndoStack

        self.server = server
        server.enable_module(trame_slicer_module)
        server.enable_module(trame_rca_module)  # views are created after start: register RCA up front
        for spec in LAYOUTS.values():  # AIS view names contain "-": map their state keys to identifiers
            for v in spec.views:
                server.translator.add_translation(v.name, js_safe(v.name))
                server.translator.add_translation(f"{v.name}_active_view_cursor", f"{js_safe(v.name)}_cursor")
        self.app = SlicerApp()
        if os.environ.get("AIS_VIEW_QUIET_BUILD", "1") != "0":  # "0": trame-slicer's own (the benchmark's reference)
            self.app.view_manager.register_factory(quiet_slice_view_factory(server))  # first match: slice views
        register_rca_factories(self.app.view_manager, server, slice_view_ui_f=lambda *_a: None, **RCA_SETTINGS)
        self.layouts = LayoutManager(self.app.scene, self.app.view_manager, server)
        for spec in LAYOUTS.values():
            self.layouts.register_layout(str(spec.id), slicer_layout_to_vue(spec.xml()), lazy_initialization=True)
        # The views of the role are created before any effect parameter node enters the scene: an effect
        # pipeline created while its view is being constructed would have no view (trame-slicer 2.0.0).
        for kind in {"annotator": ("2x2", "all", "dwi3plane"), "datamanager": ()}.get(role, ("review",)):
            self.layouts.create_layout_views_if_needed(str(layout_for(kind).id))
        self.no_multisampling()
        self.view_logics = ViewLogics(self.app.scene, app_logic=self.app.app_logic, create_slice_logics=False)
        self.editor = self.app.segmentation_editor
        self.undo_stack = UndoStack(undo_limit=20)
        self.editor.set_undo_stack(self.undo_stack)
        self.ws: Optional[workspace.CaseWorkspace] = None
        self.spec = None
        self.preview_node = None

    @property
    def scene(self) -> Any:
        return self.app.scene

    # ------------------------------------------------------------------ case
    def open_case(self, root: str, case_id: str, rater_id: str, role: str) -> workspace.CaseWorkspace:
        """Show the case's AIS layout, then let the bridge load the case into it (rules: the library's)."""
        self.close_case()
        sequences = workspace.case_sequences(root, case_id) if isinstance(root, str) else None  # a server: after load
        self.spec = layout_for("2x2" if role == "annotator" else "review", sequences)
        self.layouts.set_layout(str(self.spec.id))
        self.layouts.create_layout_views_if_needed(str(self.spec.id))
        self.no_multisampling()
        self.ws = workspace.open_case(self.scene, root, case_id, rater_id, role, view_logics=self.view_logics)
        if self.ws.views and self.ws.views["layout_id"] != self.spec.id:
            self.spec = LAYOUTS[self.ws.views["layout_id"]]
            self.layouts.set_layout(str(self.spec.id))
            self.layouts.create_layout_views_if_needed(str(self.spec.id))
            self.no_multisampling()
        self.refresh_views()
        self.editor.set_active_segmentation(self.ws.segmentation, self.ws.reference_node)
        self.editor.set_active_segment_id(self.ws.editable_segment_id)
        self.undo_stack.clear()
        return self.ws

    def no_multisampling(self) -> None:
        """Render the slice views without MSAA: the server renders in software (Mesa), where 4× multisampling
        makes each frame of a slice view 4–10× slower (measured: 12–28 ms → 1–6 ms) and only smooths the
        crosshair and outline lines; the images themselves are texture-mapped and look the same."""
        samples = os.environ.get("AIS_VIEW_MULTISAMPLES", "0")  # "keep": trame-slicer's own (the benchmark's reference)
        for view in self.app.view_manager.get_views():
            if samples != "keep":
                view.render_window().SetMultiSamples(int(samples))

    def refresh_views(self) -> None:
        """Fit and centre the linked views on the DWI (after trame created and sized them)."""
        if self.ws is not None and self.spec is not None:
            fit_case_views(self.view_logics, self.spec, self.ws.volumes.get("dwi"))
        self.render()

    def close_case(self) -> None:
        if self.ws is not None:
            self.set_effect("none")
        self.remove_preview()
        workspace.close_case(self.scene)
        self.ws = None

    def render(self) -> None:
        for view in self.app.view_manager.get_views():
            view.schedule_render()

    # ------------------------------------------------------------------ views
    def dwi_view_name(self) -> str:
        return next(v.name for v in self.spec.views if v.sequence == "dwi" and v.orientation == "Axial")

    def slice_view(self, name: str) -> Any:
        return self.app.view_manager.get_view(name)

    def slice_offset(self) -> float:
        return float(self.view_logics.slice_logic(self.dwi_view_name()).GetSliceOffset())

    def set_slice_offset(self, offset: float) -> None:
        self.view_logics.set_slice_offset(self.dwi_view_name(), float(offset))
        self.render()

    def slice_range(self) -> tuple[float, float, float]:
        """(lowest, highest, step) slice offset of the DWI view in mm."""
        view = self.slice_view(self.dwi_view_name())
        lo, hi = view.get_slice_range()
        return float(lo), float(hi), float(view.get_slice_step() or 1.0)

    def jump_to(self, ras: Any) -> None:
        """Crosshair jump of every linked AIS view to ``ras`` (mm)."""
        self.view_logics.jump_to_ras([float(x) for x in ras], centered=True)
        self.render()

    def crosshair_ras(self) -> list[float]:
        node = self.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        return [float(x) for x in node.GetCrosshairRAS()]

    def view_geometry(self) -> dict[str, Any]:
        """The DWI view's pixel → RAS map (VTK pixel origin bottom-left) and its size in pixels."""
        node = self.view_logics.slice_node(self.dwi_view_name())
        dims = node.GetDimensions()
        return {"view": self.dwi_view_name(), "xy_to_ras": xy_to_ras(node).tolist(),
                "width": int(dims[0]), "height": int(dims[1])}

    # ------------------------------------------------------------------ editing
    def set_effect(self, name: str) -> None:
        from trame_slicer.segmentation import (
            SegmentationEffectDraw,
            SegmentationEffectErase,
            SegmentationEffectIslands,
            SegmentationEffectNoTool,
            SegmentationEffectPaint,
            SegmentationEffectScissors,
        )

        types = {"none": SegmentationEffectNoTool, "paint": SegmentationEffectPaint,
                 "erase": SegmentationEffectErase, "draw": SegmentationEffectDraw,
                 "scissors": SegmentationEffectScissors, "islands": SegmentationEffectIslands}
        if name not in types:
            raise ValueError(f"unknown tool {name!r} (one of {', '.join(EFFECTS)})")
        if name != "none" and self.ws is None:
            return
        self.editor.set_active_effect_type(types[name])

    def set_brush_diameter_mm(self, diameter: float) -> None:
        from trame_slicer.segmentation import BrushDiameterMode, SegmentationEffectErase, SegmentationEffectPaint

        for kind in (SegmentationEffectPaint, SegmentationEffectErase):
            effect = self.editor.get_effect(kind)
            if effect is not None:
                effect.set_brush_diameter(float(diameter), BrushDiameterMode.Absolute)

    def set_editable_segment(self, segment_id: str) -> None:
        self.editor.set_active_segment_id(segment_id)

    def undo(self) -> None:
        self.undo_stack.undo()
        self.render()

    def redo(self) -> None:
        self.undo_stack.redo()
        self.render()

    def set_segment_with_undo(self, mask: np.ndarray) -> None:
        """Replace the editable segment by ``mask`` through the editor (one undoable step)."""
        from trame_slicer.segmentation import ModificationMode

        from AISAnnotationMRML.preannotation_nodes import modifier_labelmap

        self.editor.active_segment_modifier.apply_labelmap(
            modifier_labelmap(np.asarray(mask, dtype=np.uint8), self.ws.reference_node),
            modification_mode=ModificationMode.Set, do_bypass_masking=True)
        self.render()

    # ------------------------------------------------------------------ threshold preview
    def show_preview(self, mask: Optional[np.ndarray]) -> None:
        from AISAnnotationMRML.preannotation_nodes import show_preview_in_slice_views, update_preview_node

        if mask is None:
            self.remove_preview()
            return
        self.preview_node = update_preview_node(self.scene, mask, self.ws.reference_node, self.preview_node)
        show_preview_in_slice_views(self.scene, self.preview_node, opacity=0.5)
        self.render()

    def remove_preview(self) -> None:
        from AISAnnotationMRML.preannotation_nodes import remove_preview_node

        if self.preview_node is not None:
            remove_preview_node(self.scene, self.preview_node)
            self.preview_node = None
            if self.ws is not None and self.ws.disagreement is not None:  # the review layout's own label layer
                from AISAnnotationMRML.views import assign_views

                assign_views(self.scene, self.spec, self.ws.volumes, {"disagreement": self.ws.disagreement})
            self.render()

    # ------------------------------------------------------------------ layouts, islands, scissors, all views' geometry
    def show_layout(self, kind: str) -> None:
        """Switch the open annotation to layout ``kind`` (the bridge's :func:`~AISAnnotationMRML.case_views.show_layout`)."""
        from AISAnnotationMRML.case_views import show_layout

        spec = layout_for(kind, [k for k, n in self.ws.volumes.items() if n is not None])
        self.layouts.set_layout(str(spec.id))
        self.layouts.create_layout_views_if_needed(str(spec.id))
        show_layout(self.ws, self.view_logics, kind)
        self.spec = spec
        self.render()

    def apply_islands(self, mode: str, min_voxels: int = 0) -> None:
        """Slicer's Islands effect on the editable segment: ``keep_largest`` or ``remove_small`` (< ``min_voxels``)."""
        from trame_slicer.segmentation import SegmentationEffectIslands, SegmentationIslandsMode

        modes = {"keep_largest": SegmentationIslandsMode.KEEP_LARGEST_ISLAND,
                 "remove_small": SegmentationIslandsMode.REMOVE_SMALL_ISLANDS}
        if mode not in modes:
            raise ValueError(f"unknown islands operation {mode!r} (one of {', '.join(modes)})")
        if self.ws is None:
            return
        effect = self.editor.set_active_effect_type(SegmentationEffectIslands)
        effect.set_island_mode(modes[mode])  # a click in a view no longer picks an island
        effect.set_minimum_island_size(int(min_voxels))
        effect.apply(modes[mode])
        self.render()

    def set_island_pick(self, mode: str) -> bool:
        """Slicer's interactive Islands modes: a left click in a slice view then keeps (``keep_selected``) or
        removes (``remove_selected``) the editable segment's 6-connected island under it."""
        from trame_slicer.segmentation import SegmentationEffectIslands, SegmentationIslandsMode

        modes = {"keep_selected": SegmentationIslandsMode.KEEP_SELECTED,
                 "remove_selected": SegmentationIslandsMode.REMOVE_SELECTED}
        if mode not in modes:
            raise ValueError(f"unknown island selection {mode!r} (one of {', '.join(modes)})")
        if self.ws is None:
            return False
        self.editor.set_active_effect_type(SegmentationEffectIslands).set_island_mode(modes[mode])
        return True

    def set_scissors(self, fill: str, slices: str) -> None:
        """Scissors options: ``fill`` erase_inside/erase_outside/fill_inside/fill_outside; ``slices`` all/this."""
        from trame_slicer.segmentation import (
            ScissorsEffectFillMode,
            ScissorsEffectRangeMode,
            SegmentationEffectScissors,
        )

        effect = self.editor.get_effect(SegmentationEffectScissors)
        if effect is None:
            return
        effect.set_fill_mode(ScissorsEffectFillMode[fill.upper()])
        effect.set_range_mode(ScissorsEffectRangeMode.UNLIMITED if slices == "all" else ScissorsEffectRangeMode.SYMMETRIC)
        effect.set_symmetric_distance(0.0)

    def views_geometry(self) -> dict[str, Any]:
        """Every shown view's pixel → RAS map and size (as :meth:`view_geometry`), by view name."""
        out = {}
        for v in self.spec.views if self.spec is not None else []:
            node = self.view_logics.slice_node(v.name)
            if node is not None:
                dims = node.GetDimensions()
                out[v.name] = {"xy_to_ras": xy_to_ras(node).tolist(), "width": int(dims[0]), "height": int(dims[1]),
                               "content": v.content, "orientation": v.orientation}
        return out

    def observe_crosshair(self, callback: Any) -> None:
        """Call ``callback()`` when the crosshair moves (a shift-move in any view, a jump)."""
        from vtkmodules.vtkCommonCore import vtkCommand

        node = self.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        if node is not None:
            node.AddObserver(vtkCommand.ModifiedEvent, lambda *_a: callback())
