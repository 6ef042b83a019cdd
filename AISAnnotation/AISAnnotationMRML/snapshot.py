"""Offscreen PNG of a case in the AIS 2×2 layout, through Slicer's layout and slice logic.

A private scene is set up exactly as the module shows a case (:func:`.views.show_case`):
the 2×2 layout, linked views aligned with the DWI acquisition planes, presets. The views
are moved with a crosshair jump to the chosen point (so the DWI panel is a native DWI slice); each panel's pixels are the slice logic's own windowed, colour-mapped
reslice of that view's volume, and the mask outline is drawn from the slice logic's
label-layer reslice of the mask (nearest neighbour, in physical space), so FLAIR on its
own grid shows the outline where the DWI mask is. Panels are composed with matplotlib
(Agg backend), so no display or OpenGL context is needed.
"""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import slicer

from AISAnnotationLib.case import Case
from AISAnnotationLib.display import largest_lesion_slice, mask_ring
from AISAnnotationLib.errors import InputError
from AISAnnotationLib.image import Image
from AISAnnotationLib.io import atomic_write_bytes

from .case_nodes import load_case_nodes
from .layouts import AIS_2X2, CORE_SEQUENCES, LAYOUTS
from .views import ViewLogics, displayed_rgba, resliced_array, show_case, xy_to_ras
from .volumes import image_to_volume_node

OUTLINE_RGB = (1.0, 0.0, 0.0)
# further masks (e.g. annotator B, review): cyan, yellow, magenta
EXTRA_OUTLINE_RGB = ((0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 1.0))
MaskArg = Union[None, np.ndarray, "dict[str, np.ndarray]"]
PANEL_PIXELS = 384
# outline: a ring this many panel pixels wide just outside the mask (visible over the ADC tint)
OUTLINE_WIDTH = 2


def choose_slice_ras(case: Case, mask: Optional[np.ndarray], slice: Union[str, float] = "auto") -> dict[str, Any]:
    """The RAS point the snapshot is taken at, and why.

    ``slice="auto"``: the DWI slice (k) with the largest lesion area, at the lesion's
    centroid on it; without a lesion, the DWI slice with the largest brain area.
    A number: that RAS S coordinate (mm), at the DWI volume's centre in R and A.
    """
    ref = case.reference
    if slice == "auto" or slice is None:
        k = largest_lesion_slice(mask) if mask is not None else None
        source = "largest lesion area"
        region = mask
        if k is None:
            region = case.brain_mask()
            k = largest_lesion_slice(region)
            source = "largest brain area (no lesion)"
        if k is None:
            k, source, region = ref.shape3[2] // 2, "middle slice", None
        if region is not None and region[:, :, k].any():
            ii, jj = np.nonzero(region[:, :, k])
            ijk = (float(ii.mean()), float(jj.mean()), float(k))
        else:
            ijk = ((ref.shape3[0] - 1) / 2, (ref.shape3[1] - 1) / 2, float(k))
        ras = (ref.affine @ np.array([*ijk, 1.0]))[:3]
        return {"ras": [float(x) for x in ras], "slice_index": int(k), "source": source}
    try:
        z = float(slice)
    except (TypeError, ValueError):
        raise InputError(f"--slice must be 'auto' or a RAS S coordinate in mm, got {slice!r}") from None
    centre_ijk = (np.array(ref.shape3, dtype=float) - 1) / 2
    ras = (ref.affine @ np.array([*centre_ijk, 1.0]))[:3]
    ras[2] = z
    k = int(round(float((np.linalg.inv(ref.affine) @ np.array([*ras, 1.0]))[2])))
    zs = [float((ref.affine @ np.array([*centre_ijk[:2], kk, 1.0]))[2]) for kk in (0, ref.shape3[2] - 1)]
    if not min(zs) - 1e-3 <= z <= max(zs) + 1e-3:
        raise InputError(f"--slice {z:g} mm is outside the DWI volume (S from {min(zs):.1f} to {max(zs):.1f} mm)")
    return {"ras": [float(x) for x in ras], "slice_index": k, "source": "requested RAS S"}


def _as_masks(mask: MaskArg, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    if mask is None:
        return {}
    masks = dict(mask) if isinstance(mask, dict) else {"lesion": mask}
    out = {}
    for name, m in masks.items():
        arr = np.asarray(m).astype(bool)
        if arr.shape != shape:
            raise InputError(f"mask {name!r}: shape {arr.shape} is not the DWI grid {shape}")
        out[name] = arr
    if len(out) > 1 + len(EXTRA_OUTLINE_RGB):
        raise InputError(f"at most {1 + len(EXTRA_OUTLINE_RGB)} masks can be outlined, got {len(out)}")
    return out


def render_case_snapshot(case: Case, mask: MaskArg, out_png: Union[str, Path],
                         slice: Union[str, float] = "auto", panel_pixels: int = PANEL_PIXELS,
                         title: Optional[str] = None) -> dict[str, Any]:
    """Write a PNG of ``case`` in the AIS 2×2 layout (DWI b1000, ADC, eADC, FLAIR) with mask outlines.

    Args:
        case: the loaded case (``AISAnnotationLib.case.load_case``).
        mask: lesion mask [i, j, k] on the DWI grid, or None (no outline), or a dict
            name → mask (e.g. {"A": ..., "B": ...}) outlined in red, cyan, yellow, magenta;
            "auto" uses the union.
        out_png: PNG path (written atomically).
        slice: "auto" (largest lesion area) or a RAS S coordinate in mm.
        panel_pixels: slice view size in pixels (square).

    Returns a dict: ``path``, ``ras``, ``slice_index``, ``source``, ``layout_id`` and
    ``panels`` (view name → label, sequence, missing, volume name, nonzero fraction,
    outline pixel count (``outline_pixels``: all masks; ``outline_pixels_by_mask``), and ``box``
    [x0, y0, x1, y1] of the panel's image in PNG pixels); ``outline_colors`` name → RGB.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe inside Slicer

    ref = case.reference
    masks = _as_masks(mask, ref.shape3)
    colors = dict(zip(masks, (OUTLINE_RGB, *EXTRA_OUTLINE_RGB)))
    union = np.logical_or.reduce(list(masks.values())) if masks else None
    where = choose_slice_ras(case, union, slice)

    scene = slicer.vtkMRMLScene()
    logics = ViewLogics(scene)
    try:
        keys = [k for k in CORE_SEQUENCES if k in case.images]
        nodes = load_case_nodes(scene, case, keys)
        logics.set_layout(AIS_2X2)
        for v in LAYOUTS[AIS_2X2].views:
            logics.slice_node(v.name).SetDimensions(panel_pixels, panel_pixels, 1)
        shown = show_case(logics, nodes, layout_id=AIS_2X2, brain=case.brain_mask())
        logics.jump_to_ras(where["ras"])
        # each mask in turn in the label layer: the slice logic reslices it (nearest neighbour) per view
        edges: dict[str, dict[str, np.ndarray]] = {v.name: {} for v in LAYOUTS[AIS_2X2].views}
        for name, m in masks.items():
            label = image_to_volume_node(scene, Image(m.astype(np.uint8), ref.affine, name=name),
                                         f"mask {name}", labelmap=True)
            for v in LAYOUTS[AIS_2X2].views:
                logics.composite_node(v.name).SetLabelVolumeID(label.GetID())
                lab = None if shown["views"][v.name]["missing"] else resliced_array(logics.slice_logic(v.name), "label")
                if lab is not None:
                    edges[v.name][name] = mask_ring(lab > 0, OUTLINE_WIDTH)

        panels: dict[str, dict[str, Any]] = {}
        images: dict[str, np.ndarray] = {}
        for v in LAYOUTS[AIS_2X2].views:
            logic = logics.slice_logic(v.name)
            info = dict(shown["views"][v.name])
            rgba = displayed_rgba(logic) if not info["missing"] else None
            if rgba is None:
                rgb = np.zeros((panel_pixels, panel_pixels, 3))
                nonzero = 0.0
            else:
                alpha = rgba[..., 3:4] / 255.0
                rgb = rgba[..., :3] / 255.0 * alpha
                nonzero = float((rgba[..., :3].max(axis=-1) > 0).mean())
            rgb = rgb.copy()
            by_mask = {}
            for name, edge in edges[v.name].items():
                rgb[edge] = colors[name]
                by_mask[name] = int(edge.sum())
            outline_n = int(np.logical_or.reduce(list(edges[v.name].values())).sum()) if edges[v.name] else 0
            ras = xy_to_ras(logic.GetSliceNode()) @ np.array([panel_pixels / 2, panel_pixels / 2, 0, 1])
            info.update(nonzero_fraction=nonzero, outline_pixels=outline_n, outline_pixels_by_mask=by_mask,
                        slice_offset=float(logic.GetSliceOffset()), centre_ras=[float(x) for x in ras[:3]])
            panels[v.name] = info
            images[v.name] = rgb
    finally:
        logics.close()
        scene.Clear(1)

    fig = Figure(figsize=(8, 8.6), dpi=100, facecolor="white")
    head = title or (f"{case.case_id}   plane of DWI slice {where['slice_index']} ({where['source']}), "
                     f"through S = {where['ras'][2]:.1f} mm")
    if len(masks) > 1:
        names = {OUTLINE_RGB: "red", EXTRA_OUTLINE_RGB[0]: "cyan", EXTRA_OUTLINE_RGB[1]: "yellow",
                 EXTRA_OUTLINE_RGB[2]: "magenta"}
        head += "\noutlines: " + ", ".join(f"{n} {names[c]}" for n, c in colors.items())
    fig.suptitle(head, fontsize=10)
    axes = {}
    for idx, v in enumerate(LAYOUTS[AIS_2X2].views):
        ax = fig.add_axes([0.02 + 0.49 * (idx % 2), 0.49 - 0.465 * (idx // 2), 0.47, 0.42])
        ax.imshow(images[v.name], origin="lower", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        p = panels[v.name]
        ax.set_title(p["label"] + ("  (derived)" if v.sequence in case.derived else ""), fontsize=11,
                     color="darkred" if p["missing"] else "black")
        if p["missing"]:
            ax.text(0.5, 0.5, f"{p['label']}\nnot available for this case", transform=ax.transAxes,
                    ha="center", va="center", color="white", fontsize=12)
        ax.text(0.01, 0.01, "R", transform=ax.transAxes, color="yellow", fontsize=9)
        ax.text(0.99, 0.01, "L", transform=ax.transAxes, color="yellow", fontsize=9, ha="right")
        axes[v.name] = ax
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")
    width, height = fig.canvas.get_width_height()
    for name, ax in axes.items():
        x0, y0, x1, y1 = ax.get_window_extent().extents
        panels[name]["box"] = [int(round(x0)), int(round(height - y1)), int(round(x1)), int(round(height - y0))]
    path = atomic_write_bytes(Path(out_png), buf.getvalue())
    return {"path": str(path), **where, "layout_id": AIS_2X2, "panels": panels, "size": [width, height],
            "outline_colors": {n: list(c) for n, c in colors.items()}}
