"""Every action of the browser page, as one call into the MRML bridge (:mod:`AISAnnotationMRML.workspace`).

A :class:`Controller` belongs to one user (rater id + role) of one dataset; it keeps the page's
state (a plain dict mirrored into trame state by :mod:`.app`) and turns library errors into a
sentence in ``state["error"]``: the page never shows a traceback.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from AISAnnotationLib.errors import AISError
from AISAnnotationMRML import workspace

from .scene import WebScene

ROLE_TABS = {"annotator": "annotate", "reviewer": "review", "arbitrator": "review", "datamanager": "manage"}


def default_state(rater_id: str, role: str) -> dict[str, Any]:
    return {
        "rater_id": rater_id, "role": role, "tab": ROLE_TABS.get(role, "annotate"),
        "queue": [], "queue_filter": "all cases", "case_id": "", "message": "", "error": "",
        "slice_offset": 0.0, "slice_min": 0.0, "slice_max": 1.0, "slice_step": 1.0,
        "adc_threshold": 620.0, "preview_on": False, "candidates": [], "tool": "none", "brush_mm": 5.0,
        "notes": [], "note_text": "", "note_decision": workspace.NOTE_DECISIONS[0],
        "note_decisions": list(workspace.NOTE_DECISIONS), "no_visible_lesion": False,
        "screening": {}, "can_undo": False, "can_redo": False, "segment_voxels": 0, "refine_on": False, "decided": False,
        "metrics": [], "lesions": [], "reason": "", "escalation": "", "raters_ab": {},
        "status_rows": [], "dm_text": "", "view_geometry": {}, "crosshair": [0.0, 0.0, 0.0],
        "layout": "2x2", "views_geometry": {}, "wl_presets": {}, "wl_choice": {}, "returned": "",
        "screen_seqs": [], "island_min": 10, "scissors_fill": "erase_inside", "scissors_slices": "all",
        "report_url": "", "pre_source": "classical", "pre_sources": [], "models": [], "model_key": "",
        "island_pick": "", "busy": False, "candidate_id": 0,
    }


class Controller:
    """The page's actions for one user; ``publish(dict)`` pushes state changes to the page."""

    def __init__(self, scene: WebScene, root: str, rater_id: str, role: str,
                 publish: Optional[Callable[[dict[str, Any]], None]] = None, models: Any = ()) -> None:
        self.scene = scene
        self.root = root if hasattr(root, "queue") else str(root)  # a Dataset (server transport) or a folder
        self.rater_id = rater_id
        self.role = role
        self.state = default_state(rater_id, role)
        self.models = list(models)  # AISAnnotationLib.ai.catalog.ModelChoice: offered by key, never by path
        self.state.update(_source_state(self.models))
        self._publish = publish or (lambda _changes: None)
        self._context = None
        self._preview = None
        self._applied: Optional[str] = None  # the source of the candidates last applied to the open case
        self._rows: list[dict[str, Any]] = []  # the applied candidate rows and their regions (candidate ids)
        self._labels: Optional[np.ndarray] = None
        self._crosshair_observed = False
        self.report_dir: Optional[Path] = None  # set by the app: a folder it serves at ais-report/
        self.scene.undo_stack.index_changed.connect(self._undo_changed)
        self.scene.editor.segmentation_modified.connect(self._segment_changed)

    # ------------------------------------------------------------------ plumbing
    def set(self, **changes: Any) -> None:
        self.state.update(changes)
        self._publish(changes)

    def run(self, action: Callable[..., Any], *args: Any) -> Any:
        """Call ``action``; a library error becomes the page's error line."""
        try:
            out = action(*args)
        except (AISError, ValueError, KeyError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            self.set(error=str(msg), message="")
            return None
        return out

    @property
    def ws(self) -> Optional[workspace.CaseWorkspace]:
        return self.scene.ws

    def _segment_changed(self, *_a: Any) -> None:
        """The segment changed (stroke, islands, undo/redo …): its voxel count, and the candidate list as the
        segment holds it now (a removed lesion leaves the list; the bridge applies the library's rule)."""
        if self.ws is not None and self.ws.editable_segment_id:
            seg = workspace.segment_mask(self.ws, self.ws.editable_segment_id)
            changes: dict[str, Any] = {"segment_voxels": int(np.count_nonzero(seg))}
            if self._labels is not None and self._labels.shape == seg.shape:
                rows = _plain(workspace.current_candidates(self.ws, self._rows, self._labels, seg))
                if rows != self.state["candidates"]:
                    changes["candidates"] = rows
                    if not any(r["id"] == self.state["candidate_id"] for r in rows):
                        changes["candidate_id"] = 0
            self.set(**changes)

    def _undo_changed(self, *_a: Any) -> None:
        self.set(can_undo=self.scene.undo_stack.can_undo(), can_redo=self.scene.undo_stack.can_redo())

    # ------------------------------------------------------------------ queue and case
    def refresh_queue(self) -> None:
        rows = self.run(workspace.case_queue, self.root, self.rater_id, self.role, self.state["queue_filter"])
        if rows is not None:
            self.set(queue=[{k: (", ".join(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows])

    def open_case(self, case_id: str) -> None:
        def act() -> None:
            from AISAnnotationMRML.preannotation_nodes import clear_editable_intensity_range

            self._context = None
            self._preview = None
            self._applied, self._rows, self._labels = None, [], None
            clear_editable_intensity_range(self.scene.editor.editor_node)
            ws = self.scene.open_case(self.root, case_id, self.rater_id, self.role)
            lo, hi, step = self.scene.slice_range()
            changes: dict[str, Any] = dict(case_id=ws.case_id, error="", candidates=[], candidate_id=0, preview_on=False, refine_on=False, decided=False,  # noqa: E501
                                           tool="none", notes=workspace.notes(ws), metrics=[], lesions=[],
                                           slice_min=lo, slice_max=hi, slice_step=step,
                                           slice_offset=self.scene.slice_offset(),
                                           message=f"{ws.case_id} open for {self.rater_id} ({self.role})")
            changes.update(self._view_controls(ws))
            if self.role == "annotator":
                changes["screening"] = workspace.load_screening(ws)
                changes["returned"] = workspace.returned_text(ws)
                changes["screen_seqs"] = [k for k in workspace.FORM_LIKERT if k in ws.volumes]
            else:
                metrics, lesions = workspace.agreement_tables(ws)
                changes.update(metrics=_plain(metrics), lesions=_plain(lesions), raters_ab=dict(ws.raters),
                               escalation=workspace.escalation_text(ws))
            self.set(**changes)
            self._segment_changed()
            self.update_geometry()

        self.run(act)

    def update_geometry(self) -> None:
        if self.ws is not None:
            self.set(view_geometry=self.scene.view_geometry(), crosshair=self.scene.crosshair_ras(),
                     slice_offset=self.scene.slice_offset(), views_geometry=self.scene.views_geometry())

    def _view_controls(self, ws: Any) -> dict[str, Any]:
        from AISAnnotationMRML.case_views import window_preset_names

        if not self._crosshair_observed:  # a shift-move in any view moves the crosshair: the page follows
            self.scene.observe_crosshair(self._crosshair_moved)
            self._crosshair_observed = True
        names = window_preset_names(ws)
        return {"layout": "2x2" if self.role == "annotator" else "review", "wl_presets": names,
                "wl_choice": {k: v[0] for k, v in names.items()}}

    def _crosshair_moved(self) -> None:
        """The crosshair moved: the linked slices jump right after it, so the page hears of both a moment later."""
        import asyncio

        def publish() -> None:
            if self.ws is not None:
                self.set(crosshair=self.scene.crosshair_ras(), slice_offset=self.scene.slice_offset(),
                         views_geometry=self.scene.views_geometry())

        try:
            asyncio.get_running_loop().call_later(0.05, publish)
        except RuntimeError:  # no event loop (called outside the server)
            publish()

    def set_layout(self, kind: str) -> None:
        """Switch the annotator's views (2×2 / DWI in 3 planes); window choices and crosshair are kept."""
        from AISAnnotationMRML.case_views import set_window_preset

        def act() -> None:
            self.scene.show_layout(kind)
            for seq, name in self.state["wl_choice"].items():
                set_window_preset(self.ws, seq, name)
            self.scene.render()
            self.set(layout=kind, error="", message=f"Layout: {self.scene.spec.name}")
            self.update_geometry()

        if self.ws is not None:
            self.run(act)

    def set_window(self, sequence: str, name: Any) -> None:
        """Window/level preset ``name`` (or its index) of ``sequence`` (the library's presets; ADC keeps the 620 tint)."""
        from AISAnnotationMRML.case_views import set_window_preset

        if self.ws is None:
            return
        if isinstance(name, int):
            names = self.state["wl_presets"].get(sequence, [])
            name = names[name] if 0 <= name < len(names) else str(name)
        preset = self.run(set_window_preset, self.ws, sequence, name)
        if preset is not None:
            self.scene.render()
            self.set(wl_choice={**self.state["wl_choice"], sequence: name}, error="",
                     message=f"{sequence}: {name} ({preset.lower:.0f}-{preset.upper:.0f})")

    def set_slice(self, offset: float) -> None:
        if self.ws is not None:
            self.scene.set_slice_offset(float(offset))
            self.state["slice_offset"] = float(offset)
            self.set(view_geometry=self.scene.view_geometry())  # strokes on the new slice map to RAS from it

    def jump(self, ras: Any) -> None:
        if self.ws is not None:
            self.scene.jump_to(ras)
            self.update_geometry()

    def pick_candidate(self, candidate_id: int) -> None:
        """Select the candidate row ``candidate_id`` and jump the views to its centroid."""
        row = next((r for r in self.state["candidates"] if r["id"] == candidate_id), None)
        if row is not None:
            self.set(candidate_id=candidate_id)
            self.jump(row["centroid_ras"])

    # ------------------------------------------------------------------ threshold-then-refine
    def _ctx(self) -> Any:
        from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters

        if self._context is None:
            self._context = PreannotationContext.from_case(self.ws.case, PreannotationParameters())
        return self._context

    def _parameters(self) -> Any:
        from AISAnnotationLib.preannotate import PreannotationParameters

        return PreannotationParameters(adc_threshold=float(self.state["adc_threshold"]))

    def preview_threshold(self, threshold: Optional[float] = None) -> None:
        """Live preview: ADC < threshold (∧ DWI bright) as a label layer over every view."""
        if self.ws is None or self.role != "annotator":
            return
        if threshold is not None:
            self.state["adc_threshold"] = float(threshold)

        def act() -> None:
            p = self._parameters()
            self._preview = self._ctx().preview(p.adc_threshold, p.core_dwi_ratio, out=self._preview)
            self.scene.show_preview(self._preview)
            self.set(preview_on=True, message=f"Preview: ADC < {p.adc_threshold:g}×10⁻⁶ mm²/s "
                     f"({int(np.count_nonzero(self._preview))} voxels)")

        self.run(act)

    def apply_threshold(self) -> None:
        """Candidates of the chosen source (classical threshold-then-refine, the chosen trained model, or
        both combined: the library's :func:`~AISAnnotationLib.ai.catalog.preannotate_with`) into the
        segment (one undo step). A model runs in a worker thread: the views keep streaming meanwhile."""
        import asyncio

        from AISAnnotationLib.ai.catalog import SOURCES, find_choice, preannotate_with

        if self.ws is None or self.state.get("busy"):
            return
        source = self.state["pre_source"]
        model = self.run(find_choice, self.models, self.state["model_key"]) if source != "classical" else None
        if source != "classical" and model is None:
            return
        ws, what = self.ws, SOURCES[source] + (f": {model.key}" if model is not None else "")
        ctx, params = self.run(self._ctx), self._parameters()
        if ctx is None:
            return

        def compute() -> Any:
            return preannotate_with(ws.case, ctx, params, source, model)

        def finish(result: Any) -> None:
            if self.ws is not ws:  # the user opened another case meanwhile
                return
            from AISAnnotationLib.preannotate.remaining import candidate_labels

            ws.preannotation, self._applied = result, source
            rows = _plain([c.to_dict() for c in result.candidates])
            self._rows, self._labels = rows, candidate_labels(result, ws.case.reference)
            self.state["candidates"] = rows  # before the segment's change refreshes the list from it
            self.scene.remove_preview()
            self.scene.set_segment_with_undo(result.mask)
            self.set(preview_on=False, candidates=rows,
                     message=f"{len(result.candidates)} candidate(s) applied ({what})", error="")
            self._undo_changed()
            if rows:  # the views go straight to the list's first row (the largest): the lesion is in sight
                self.pick_candidate(rows[0]["id"])

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if model is None or loop is None:
            self.run(lambda: finish(compute()))
            return
        self.set(busy=True, error="", message=f"Running {what} …")

        def done(future: Any) -> None:
            self.set(busy=False)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001  (ONNX Runtime raises its own types): a sentence, no traceback
                self.set(error=f"{model.key}: {exc}", message="")
                return
            self.run(finish, result)

        loop.run_in_executor(None, compute).add_done_callback(done)

    def refine(self, on: bool = True) -> None:
        """Paint within the DWI intensity range of the grown lesion rim (the library's refine range), or freely."""
        from AISAnnotationMRML.preannotation_nodes import clear_editable_intensity_range, set_editable_intensity_range

        if self.ws is None:
            return
        if not on:
            clear_editable_intensity_range(self.scene.editor.editor_node)
            self.set(refine_on=False, message="Paint anywhere (no intensity limit)")
            return
        lower, upper = self._ctx().refine_intensity_range(self._parameters())
        set_editable_intensity_range(self.scene.editor.editor_node, lower, upper)
        self.set_tool("paint")
        self.set(refine_on=True, message=f"Refine: paint changes only DWI {lower:.0f}–{upper:.0f}")

    def set_tool(self, tool: str) -> None:
        self.run(self.scene.set_effect, tool)
        self.set(tool=tool, island_pick="" if tool != "islands" else self.state["island_pick"])
        if tool in ("paint", "erase"):
            self.scene.set_brush_diameter_mm(float(self.state["brush_mm"]))

    def set_brush(self, mm: float) -> None:
        self.state["brush_mm"] = float(mm)
        self.scene.set_brush_diameter_mm(float(mm))

    def islands(self, mode: str) -> None:
        """Keep the largest island, or remove islands smaller than ``island_min`` voxels (one undo step)."""
        if self.ws is None:
            return
        self.run(self.scene.apply_islands, mode, int(self.state["island_min"]))
        self.set(tool="islands", island_pick="", error="")
        self._segment_changed()

    def island_pick(self, mode: str) -> None:
        """Slicer's click-to-select Islands modes: the next click in a view keeps (``keep_selected``) or
        removes (``remove_selected``) the island of the editable segment under it (one undo step each)."""
        if self.ws is None:
            return
        done = self.run(self.scene.set_island_pick, mode)
        if done is not None:
            what = "keep only" if mode == "keep_selected" else "remove"
            self.set(tool="islands", island_pick=mode, error="", message=f"Click an island in a view to {what} it")

    def set_scissors(self, fill: str, slices: str) -> None:
        self.state.update(scissors_fill=fill, scissors_slices=slices)
        self.run(self.scene.set_scissors, fill, slices)

    def undo(self) -> None:
        self.scene.undo()
        self._undo_changed()

    def redo(self) -> None:
        self.scene.redo()
        self._undo_changed()

    # ------------------------------------------------------------------ notes, screening, submit
    def add_note(self) -> None:
        def act() -> None:
            workspace.add_note(self.ws, self.scene.crosshair_ras(), self.state["note_text"],
                               self.state["note_decision"])
            self.set(notes=_plain(workspace.notes(self.ws)), note_text="", error="", message="Note added")

        if self.ws is not None:
            self.run(act)

    def save_screening(self, form: dict[str, Any]) -> None:
        if self.ws is not None:
            text = self.run(workspace.save_screening, self.ws, form)
            if text:
                self.set(message=text, error="", screening=form)

    def submit(self) -> None:
        if self.ws is None:
            return
        from AISAnnotationLib.ai.catalog import tool_parameters

        params = tool_parameters(self.state["adc_threshold"], self._applied, self.ws.preannotation)
        text = self.run(workspace.submit, self.ws, {"no_visible_lesion": self.state["no_visible_lesion"]}, None,
                        params)
        if text:
            self.set(message=text, error="")
            self.refresh_queue()

    # ------------------------------------------------------------------ review and arbitration
    def decide(self, decision: str) -> None:
        if self.ws is None or self.state["decided"]:  # one decision per opening (a double click is not a second)
            return
        text = self.run(workspace.decide, self.ws, decision, self.state["reason"])
        if text:
            self.set(message=text, error="", decided=True)
            self.refresh_queue()

    def start_edit(self) -> None:
        if self.ws is not None:
            sid = self.run(workspace.start_edit, self.ws)
            if sid:
                self.scene.set_editable_segment(sid)
                self.scene.render()
                self.set(message="Editing a copy of A ∪ B ('corrected'); then 'Accept edited'", error="")

    def return_case(self, sides: list[str]) -> None:
        """Return the case to annotator(s) ``sides`` ("A"/"B") for re-annotation; the reason is required."""
        if self.ws is not None and not self.state["decided"]:
            text = self.run(workspace.return_case, self.ws, list(sides), self.state["reason"])
            if text:
                self.set(message=text, error="", decided=True)
                self.refresh_queue()

    def escalate(self) -> None:
        if self.ws is not None and not self.state["decided"]:
            text = self.run(workspace.escalate, self.ws, self.state["reason"])
            if text:
                self.set(message=text, error="", decided=True)
                self.refresh_queue()

    # ------------------------------------------------------------------ data manager
    def status_table(self) -> None:
        """The data manager's status table: the library's queue rows (state, annotators, screening, exclusion
        reason), from the folder or through the server alike."""
        rows = self.run(workspace.case_queue, self.root, self.rater_id, self.role, "all cases")
        if rows is not None:
            self.set(status_rows=[{"case_id": r["case_id"], "state": r["state"], "waiting_for": r["waiting_for"],
                                   "annotators": ", ".join(r.get("annotators") or []),
                                   "screening": r.get("screening", ""), "excluded": r.get("excluded", "")}
                                  for r in rows])

    def run_qc(self) -> None:
        text = self.run(workspace.dataset_qc, self.root) if isinstance(self.root, str) else self.run(self._server_qc)
        if text:
            self.set(dm_text=text, error="")

    def report(self) -> None:
        """Write the acceptance report (built by the server in server mode); the page shows its verdict and
        links the HTML (served at ais-report/)."""
        if self.report_dir is not None:
            out = Path(tempfile.mkdtemp(prefix="report-", dir=self.report_dir))
        else:
            out = Path(tempfile.mkdtemp(prefix="ais-report-"))
        if not isinstance(self.root, str):
            rep = self.run(self.root.write_report, out, False)
            if rep:
                v = rep["verdict"]
                rep = dict(rep, passed=v["status"] == "pass", reasons=v["reasons"])
        else:
            rep = self.run(lambda: workspace.acceptance_report(self.root, out, run_validator=False, snapshots=False))
        if rep:
            verdict = "passed" if rep["passed"] else "not passed: " + "; ".join(rep["reasons"])
            url = f"ais-report/{out.name}/report.html" if self.report_dir is not None else ""
            self.set(dm_text=f"Acceptance report {rep['html']}: {verdict}", error="", report_url=url)

    def _server_qc(self) -> str:
        rows = self.root.run_qc()
        out = [r for r in rows if r.get("excluded")]
        return "\n".join([f"Image QC of {len(rows)} session(s): {len(out)} excluded from the annotation queue."]
                         + [f"{r['case_id']}: {r.get('reason')}" for r in out])


def _source_state(models: list[Any]) -> dict[str, Any]:
    """The page's pre-annotation choice: the sources (model ones only when a model is configured) and the
    models by key, name and version (no path)."""
    from AISAnnotationLib.ai.catalog import SOURCES

    keys = list(SOURCES) if models else ["classical"]
    return {"pre_sources": [{"value": k, "title": SOURCES[k]} for k in keys],
            "models": [m.row() for m in models], "model_key": models[0].key if models else ""}


def _plain(value: Any) -> Any:
    """JSON-ready copy (numpy scalars and tuples become Python numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
