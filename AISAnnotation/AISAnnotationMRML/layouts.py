"""AIS view layouts as Slicer layout XML, registered on the scene's ``vtkMRMLLayoutNode``.

Each layout is a grid of slice views. Views are named ``AIS-<Sequence>[-<Plane>]``
(``singletontag`` in the XML, so the same view node is reused by every layout that
shows it) and all belong to :data:`AIS_VIEW_GROUP`, so Slicer's slice-link logic moves
them together without touching the standard Red/Green/Yellow views (group 0).

Layout ids are fixed integers well above Slicer's own (``SlicerLayoutUserView`` = 100)
and above the ids other extensions commonly pick; :func:`register_layouts` adds them
once (or updates them) and they stay on the layout node across a scene clear, as the
layout node is a singleton and descriptions are not scene content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional
from xml.sax.saxutils import quoteattr

AIS_VIEW_GROUP = 4
LAYOUT_BASE = 84100

AIS_2X2 = LAYOUT_BASE + 1
AIS_ROW = LAYOUT_BASE + 2
AIS_ALL = LAYOUT_BASE + 3          # 2×3 with T1/T2
AIS_3PLANE = LAYOUT_BASE + 4       # DWI, ADC, eADC, FLAIR × axial/coronal/sagittal
AIS_3PLANE_ALL = LAYOUT_BASE + 5   # + T1, T2
AIS_REVIEW = LAYOUT_BASE + 6
AIS_DWI_3PLANE = LAYOUT_BASE + 7   # DWI axial/coronal/sagittal + ADC axial (crosshair-linked)

PLANES = ("Axial", "Coronal", "Sagittal")
CORE_SEQUENCES = ("dwi", "adc", "eadc", "flair")
ALL_SEQUENCES = ("dwi", "adc", "eadc", "flair", "t1w", "t2w")

_VIEW_TAG = {"dwi": "DWI", "adc": "ADC", "eadc": "eADC", "flair": "FLAIR", "t1w": "T1", "t2w": "T2"}
_VIEW_COLOR = {"dwi": "#E8C547", "adc": "#4A90D9", "eadc": "#D9534F", "flair": "#5CB85C",
               "t1w": "#9B59B6", "t2w": "#F0AD4E", "review_a": "#E67E22", "review_b": "#1ABC9C",
               "disagreement": "#C0392B"}


@dataclass(frozen=True)
class ViewSpec:
    """One slice view of an AIS layout.

    ``content`` says what the view shows: a sequence key ("dwi", "adc", ...) or, in the
    review layout, "review_a"/"review_b" (DWI with one annotator's outline) and
    "disagreement" (DWI under the disagreement map).
    """

    name: str
    content: str
    orientation: str = "Axial"
    label: str = ""

    @property
    def sequence(self) -> str:
        """The sequence shown as background volume."""
        return "dwi" if self.content in ("review_a", "review_b", "disagreement") else self.content


@dataclass(frozen=True)
class LayoutSpec:
    id: int
    name: str
    rows: tuple[tuple[ViewSpec, ...], ...]

    @property
    def views(self) -> list[ViewSpec]:
        return [v for row in self.rows for v in row]

    def view(self, name: str) -> ViewSpec:
        for v in self.views:
            if v.name == name:
                return v
        raise KeyError(name)

    def xml(self) -> str:
        return layout_xml(self.rows)


def view_name(sequence: str, plane: str = "Axial") -> str:
    """``AIS-DWI`` for the axial view of a sequence, ``AIS-DWI-Coronal`` for the others."""
    base = f"AIS-{_VIEW_TAG.get(sequence, sequence)}"
    return base if plane == "Axial" else f"{base}-{plane}"


def _seq_view(seq: str, plane: str = "Axial") -> ViewSpec:
    tag = _VIEW_TAG[seq]
    return ViewSpec(view_name(seq, plane), seq, plane, tag if plane == "Axial" else f"{tag} {plane[:3]}")


def _view_xml(v: ViewSpec) -> str:
    props = {"orientation": v.orientation, "viewlabel": v.label or v.name, "viewcolor": _VIEW_COLOR.get(v.content, "#808080"),
             "viewgroup": str(AIS_VIEW_GROUP)}
    inner = "".join(f'<property name="{k}" action="default">{val}</property>' for k, val in props.items())
    return f'<item><view class="vtkMRMLSliceNode" singletontag={quoteattr(v.name)}>{inner}</view></item>'


def layout_xml(rows: tuple[tuple[ViewSpec, ...], ...]) -> str:
    """Slicer layout XML: a vertical stack of horizontal rows of slice views."""
    body = "".join(f'<item><layout type="horizontal">{"".join(_view_xml(v) for v in row)}</layout></item>'
                   for row in rows)
    return f'<layout type="vertical">{body}</layout>'


def _build() -> dict[int, LayoutSpec]:
    core = [_seq_view(s) for s in CORE_SEQUENCES]
    allv = [_seq_view(s) for s in ALL_SEQUENCES]
    review = (
        (ViewSpec("AIS-ReviewA", "review_a", label="A"), ViewSpec("AIS-ReviewB", "review_b", label="B")),
        (_seq_view("adc"), ViewSpec("AIS-Disagreement", "disagreement", label="A vs B")),
    )
    specs = [
        LayoutSpec(AIS_2X2, "AIS 2x2", (tuple(core[:2]), tuple(core[2:]))),
        LayoutSpec(AIS_ROW, "AIS row", (tuple(core),)),
        LayoutSpec(AIS_ALL, "AIS 2x3 (with T1/T2)", (tuple(allv[:3]), tuple(allv[3:]))),
        LayoutSpec(AIS_3PLANE, "AIS 3-plane",
                   tuple(tuple(_seq_view(s, p) for p in PLANES) for s in CORE_SEQUENCES)),
        LayoutSpec(AIS_3PLANE_ALL, "AIS 3-plane (with T1/T2)",
                   tuple(tuple(_seq_view(s, p) for p in PLANES) for s in ALL_SEQUENCES)),
        LayoutSpec(AIS_REVIEW, "AIS review", review),
        LayoutSpec(AIS_DWI_3PLANE, "AIS DWI 3-plane",
                   ((_seq_view("dwi"), _seq_view("dwi", "Coronal")), (_seq_view("dwi", "Sagittal"), _seq_view("adc")))),
    ]
    return {s.id: s for s in specs}


LAYOUTS: dict[int, LayoutSpec] = _build()


def layout_for(kind: str, sequences: Optional[list[str]] = None) -> LayoutSpec:
    """The layout of ``kind`` ("2x2", "row", "3plane", "dwi3plane", "review") for a case with ``sequences``.

    "2x2" and "3plane" grow to their T1/T2 variants when the case has T1 or T2; "dwi3plane" is the
    DWI in its three planes beside the axial ADC.
    """
    extra = bool(sequences) and any(s in sequences for s in ("t1w", "t2w"))
    ids = {"2x2": AIS_ALL if extra else AIS_2X2, "row": AIS_ROW, "all": AIS_ALL,
           "3plane": AIS_3PLANE_ALL if extra else AIS_3PLANE, "review": AIS_REVIEW,
           "dwi3plane": AIS_DWI_3PLANE}
    if kind not in ids:
        raise ValueError(f"unknown layout {kind!r}; choose one of {sorted(ids)}")
    return LAYOUTS[ids[kind]]


def register_layouts(layout_node: Any) -> list[int]:
    """Add (or refresh) every AIS layout description on ``layout_node``; returns the ids.

    Idempotent: an id already present gets its description replaced, never a duplicate.
    """
    for spec in LAYOUTS.values():
        if layout_node.IsLayoutDescription(spec.id):
            if layout_node.GetLayoutDescription(spec.id) != spec.xml():
                layout_node.SetLayoutDescription(spec.id, spec.xml())
        else:
            layout_node.AddLayoutDescription(spec.id, spec.xml())
    return sorted(LAYOUTS)


def get_layout_node(scene: Any) -> Any:
    """The scene's singleton ``vtkMRMLLayoutNode`` (None when no layout logic created it)."""
    return scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
