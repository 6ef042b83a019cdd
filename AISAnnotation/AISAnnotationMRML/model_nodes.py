"""The pre-annotation source of the segment editor effect on the case loaded in a scene (scene passed in).

The effect runs the same library path as the browser tool and the CLI
(:func:`AISAnnotationLib.ai.catalog.preannotate_with`): a model card's input sequences (FLAIR, T1w, T2w …)
are found among the volume nodes of the case in the scene (``AIS.case`` / ``AIS.sequence`` attributes set by
:func:`.case_nodes.load_case_nodes`), the DWI and ADC are the effect's own (ADC in ×10⁻⁶ mm²/s on the DWI
grid), and a sequence the case lacks is refused in one sentence. What the rater applied is kept on the
segmentation node (:data:`TOOL_PARAMETERS_ATTRIBUTE`, saved with the scene) and becomes the submission's
``AISParameters`` (:func:`recorded_tool_parameters`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Iterator, Optional

from AISAnnotationLib.case import Case
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.image import Image

from .volumes import volume_node_to_image

CASE_ATTRIBUTE = "AIS.case"
SEQUENCE_ATTRIBUTE = "AIS.sequence"
#: JSON of :func:`AISAnnotationLib.ai.catalog.tool_parameters` on the segmentation node the effect applied to.
TOOL_PARAMETERS_ATTRIBUTE = "AIS.ToolParameters"


class _NodeImages(Mapping):
    """Sequence key → :class:`Image`; node-backed entries are converted on first use (only what a card needs)."""

    def __init__(self, images: dict[str, Image], nodes: dict[str, Any]) -> None:
        self._images = dict(images)
        self._nodes = {k: n for k, n in nodes.items() if k not in self._images}

    def __getitem__(self, key: str) -> Image:
        if key not in self._images:
            if key not in self._nodes:
                raise KeyError(key)
            self._images[key] = volume_node_to_image(self._nodes[key], key)
        return self._images[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._images) + [k for k in self._nodes if k not in self._images])

    def __len__(self) -> int:
        return len(set(self._images) | set(self._nodes))


class SceneCase:
    """The case in a scene as the model path reads it: ``case_id``, ``reference`` (DWI), ``images``, ``on_dwi_grid``."""

    def __init__(self, case_id: str, reference: Image, images: Mapping) -> None:
        self.case_id = case_id
        self.reference = reference
        self.images = images
        self._on_grid: dict[str, Image] = {}

    on_dwi_grid = Case.on_dwi_grid  # the library's: same resampling, same cache


def case_sequence_nodes(scene: Any, dwi_node: Any) -> dict[str, Any]:
    """Sequence key → volume node of the case ``dwi_node`` belongs to (empty when it carries no case)."""
    case_id = dwi_node.GetAttribute(CASE_ATTRIBUTE)
    out: dict[str, Any] = {}
    if not case_id:
        return out
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        key = node.GetAttribute(SEQUENCE_ATTRIBUTE)
        if key and node.GetAttribute(CASE_ATTRIBUTE) == case_id and node.GetImageData() is not None:
            out.setdefault(key, node)
    return out


def scene_case(scene: Any, dwi_node: Any, context: Any, extra_nodes: Optional[dict[str, Any]] = None) -> SceneCase:
    """The case loaded in ``scene`` around the effect's DWI: DWI and ADC from ``context`` (what the effect
    thresholds), every other sequence from the case's volume nodes, plus ``extra_nodes`` (e.g. the chosen b0)."""
    ref = context.reference
    images = {"dwi": ref.with_array(context.dwi, name="dwi"), "adc": ref.with_array(context.adc, name="adc")}
    nodes = case_sequence_nodes(scene, dwi_node)
    for key, node in (extra_nodes or {}).items():
        if node is not None:
            nodes[key] = node
    case_id = dwi_node.GetAttribute(CASE_ATTRIBUTE) or dwi_node.GetName()
    return SceneCase(case_id, ref, _NodeImages(images, nodes))


def preannotate_in_scene(scene: Any, dwi_node: Any, context: Any, params: Any, source: str = "classical",
                         model_dir: str = "", device: str = "auto",
                         extra_nodes: Optional[dict[str, Any]] = None) -> Any:
    """The effect's candidates of ``source`` (classical, model or combined) through the library path the
    browser uses; ``model_dir`` is checked as ``serve --model`` checks it (card + ONNX file)."""
    from AISAnnotationLib.ai.catalog import SOURCES, model_choices, preannotate_with

    if source not in SOURCES:
        raise InputError(f"unknown pre-annotation source {source!r} (one of {', '.join(SOURCES)})")
    if source == "classical":
        return preannotate_with(None, context, params, source)
    if not model_dir:
        raise InputError("choose the model folder (model_card.json and the ONNX file it names)")
    choice = model_choices([model_dir])[0]
    case = scene_case(scene, dwi_node, context, extra_nodes)
    return preannotate_with(case, context, params, source, choice, device=device)


def record_tool_parameters(seg_node: Any, adc_threshold: float, source: Optional[str] = None,
                           result: Any = None) -> dict[str, Any]:
    """Keep what the rater applied (ADC threshold, pre-annotation source, model identity) on ``seg_node``."""
    from AISAnnotationLib.ai.catalog import tool_parameters

    params = tool_parameters(adc_threshold, source, result)
    seg_node.SetAttribute(TOOL_PARAMETERS_ATTRIBUTE, json.dumps(params))
    return params


def recorded_tool_parameters(seg_node: Any) -> Optional[dict[str, Any]]:
    """The parameters :func:`record_tool_parameters` kept on ``seg_node`` (None when the tool was not applied)."""
    text = seg_node.GetAttribute(TOOL_PARAMETERS_ATTRIBUTE) if seg_node is not None else None
    if not text:
        return None
    try:
        params = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{seg_node.GetName()}: attribute {TOOL_PARAMETERS_ATTRIBUTE} is not JSON ({exc})") from exc
    if not isinstance(params, dict):
        raise InputError(f"{seg_node.GetName()}: attribute {TOOL_PARAMETERS_ATTRIBUTE} is not a JSON object")
    return params


__all__ = ["TOOL_PARAMETERS_ATTRIBUTE", "SceneCase", "case_sequence_nodes", "scene_case", "preannotate_in_scene",
           "record_tool_parameters", "recorded_tool_parameters"]
