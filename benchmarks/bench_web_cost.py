"""Server-side cost of one view update in the browser app, measured in-process (part of ``bench_web.py``).

What the app's process does for a slice change or an ADC threshold change before anything goes on
the wire: the change itself (MRML slice offset / threshold preview), then a render and a JPEG of
every visible view of the AIS 2×2 layout at the browser benchmark's view size. Compared in the same
process with trame-slicer's defaults: 4× multisampled software rendering and two frames per change
(an interactive JPEG at quality 50, then the still one at 90); the app renders once without MSAA
at quality 90. CPU work is what a loaded or small server pays for every update.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

VIEW_SIZE = (330, 290)  # pixels: one view of the 2x2 layout in bench_web's 1000x640 page
CONFIGS = {"AIS settings": (0, (90,)), "trame-slicer default": (4, (50, 90))}  # MSAA samples, JPEG qualities


def server_cost(root: Path, repeat: int, name: str) -> dict[str, dict[str, list[float]]]:
    """{config: {action: [ms per update]}} for the first case of ``root`` as annotator ``ann1``."""
    from AISAnnotationWeb.app import AISWebApp
    from slicer import vtkMRMLLayerDisplayableManager
    from trame.app import get_server
    from trame_rca.encoders import RcaImageEncoder
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkCommonDataModel import vtkImageData

    app = AISWebApp(str(root), "ann1", "annotator", server=get_server(f"bench-cost-{name}", client_type="vue3"))
    app.ctrl.open_case(app.ctrl.state["queue"][0]["case_id"])
    if app.ctrl.state["error"]:
        raise RuntimeError(app.ctrl.state["error"])
    views = [app.scene.slice_view(v.name) for v in app.scene.spec.views]
    for view in views:
        view.render_window().SetSize(*VIEW_SIZE)
    encoder, buf = RcaImageEncoder.TURBO_JPEG, vtkImageData()

    def frame(view, quality: int) -> None:  # as trame-slicer's RcaWindow.img_cols_rows + the RCA encoder
        rw = view.render_window()
        rw.Render()
        vtkMRMLLayerDisplayableManager.RenderWindowBufferToImage(rw, buf)
        rows, cols, _ = buf.GetDimensions()
        img = vtk_to_numpy(buf.GetPointData().GetScalars()).reshape((cols, rows, -1))[::-1].copy()
        encoder.encode(img, cols, rows, quality)

    lo, _hi, step = app.scene.slice_range()
    start = app.scene.slice_offset()
    calls = {"n": 0}

    def slice_change() -> None:
        calls["n"] += 1
        app.scene.set_slice_offset(start + (step if calls["n"] % 2 else 0.0))

    def threshold_change() -> None:
        calls["n"] += 1
        app.ctrl.preview_threshold(620.0 + (10.0 if calls["n"] % 2 else 0.0))

    out = {c: {"slice change": [], "threshold change": []} for c in CONFIGS}
    for _round in range(2):  # A B A B: both configs meet the same drift in machine load
        for config, (samples, qualities) in CONFIGS.items():
            for view in views:
                view.render_window().SetMultiSamples(samples)
                frame(view, 90)  # warm-up: the framebuffers of the new sample count
            for action, act in (("slice change", slice_change), ("threshold change", threshold_change)):
                for _ in range((repeat + 1) // 2):
                    t0 = time.perf_counter()
                    act()
                    for q in qualities:
                        for view in views:
                            frame(view, q)
                    out[config][action].append((time.perf_counter() - t0) * 1000.0)
    app.scene.close_case()
    return out


def print_cost(roots: dict[str, Path], repeat: int) -> None:
    print(f"\nserver work per update (in-process: change + render and JPEG of the 4 views at {VIEW_SIZE[0]}x"
          f"{VIEW_SIZE[1]} px)")
    print(f"{'grid':6} {'settings':21} {'update':18} {'median ms':>10} {'min ms':>8}", flush=True)
    for label, root in roots.items():
        res = server_cost(root, repeat, label.replace(" ", ""))
        med = {c: {a: statistics.median(v) for a, v in r.items()} for c, r in res.items()}
        for config, r in res.items():
            for action, ms in r.items():
                print(f"{label:6} {config:21} {action:18} {med[config][action]:10.1f} {min(ms):8.1f}", flush=True)
        print(f"{label:6} {'speed-up':21} " + "; ".join(
            f"{a}: {med['trame-slicer default'][a] / med['AIS settings'][a]:.2f}x" for a in med["AIS settings"]))
