"""Layout and window/level of the open case (the browser page's view controls), on a scene passed in.

The layouts are :mod:`.layouts`'; the presets are the library's (:func:`AISAnnotationLib.display.window_presets`).
"""

from __future__ import annotations

from typing import Any

from AISAnnotationLib.case import DISPLAY_ORDER
from AISAnnotationLib.display import ADC_RANGES, PERCENTILE_PRESETS, DisplayPreset, window_presets
from AISAnnotationLib.errors import InputError

from .layouts import layout_for
from .views import set_display_preset, show_case
from .volumes import array_from_image_data

#: Layouts an annotator may switch between (the linked 2×2, with T1/T2 when present, and the DWI in 3 planes).
ANNOTATOR_LAYOUTS = ("2x2", "dwi3plane")


def crosshair_ras(scene: Any) -> list[float]:
    node = scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    return [float(x) for x in node.GetCrosshairRAS()] if node is not None else [0.0, 0.0, 0.0]


def show_layout(ws: Any, view_logics: Any, kind: str) -> dict[str, Any]:
    """Show the annotator's open case in layout ``kind`` (:data:`ANNOTATOR_LAYOUTS`): same volumes and
    segment, presets re-applied, views re-linked; the crosshair stays where it was. Returns ``ws.views``."""
    if ws.role != "annotator":
        raise InputError(f"{ws.rater_id} reviews {ws.case_id} in the review layout; layouts are for annotators")
    if kind not in ANNOTATOR_LAYOUTS:
        raise InputError(f"unknown layout {kind!r} (one of {', '.join(ANNOTATOR_LAYOUTS)})")
    keep = crosshair_ras(view_logics.scene)
    spec = layout_for(kind, [k for k, n in ws.volumes.items() if n is not None])
    ws.views = show_case(view_logics, ws.volumes, segmentation=ws.segmentation, brain=ws.case.brain_mask(),
                         layout_id=spec.id)
    crosshair = view_logics.scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
    if crosshair is not None:  # in three planes the crosshair shows where the other planes cut
        crosshair.SetCrosshairMode(crosshair.ShowSmallBasic if kind == "dwi3plane" else crosshair.NoCrosshair)
        crosshair.SetCrosshairBehavior(crosshair.OffsetJumpSlice)  # a shift-move moves the other planes there
    view_logics.jump_to_ras(keep)
    return ws.views


def window_sequences(ws: Any) -> list[str]:
    """The sequences of the open case that have window presets, in display order (b0 is not shown)."""
    return [k for k in DISPLAY_ORDER if k != "b0" and ws.volumes.get(k) is not None]


def window_preset_names(ws: Any) -> dict[str, list[str]]:
    """Sequence → the names of its presets (the first is the default the case opened with)."""
    return {k: [n for n, _ in (ADC_RANGES if k == "adc" else PERCENTILE_PRESETS)] for k in window_sequences(ws)}


def set_window_preset(ws: Any, sequence: str, name: str) -> DisplayPreset:
    """Show ``sequence`` with its preset ``name`` (brain voxels for images on the DWI grid); returns the preset."""
    node = ws.volumes.get(sequence)
    if node is None or sequence == "b0":
        raise InputError(f"{ws.case_id} has no {sequence!r} view (sequences: {', '.join(window_sequences(ws))})")
    arr = array_from_image_data(node.GetImageData())
    brain = ws.case.brain_mask()
    presets = {p.name: p for p in window_presets(sequence, arr, brain if brain.shape == arr.shape else None)}
    if name not in presets:
        raise InputError(f"unknown {sequence} window preset {name!r} (one of {', '.join(presets)})")
    set_display_preset(node.GetScene(), node, presets[name])
    return presets[name]
