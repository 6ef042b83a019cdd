"""The page: a side panel per role (queue, annotate, review, manage) beside the linked AIS views.

Element ids (``id=``) are stable: the browser tests and benchmarks drive the page through them.
"""

from __future__ import annotations

from typing import Any


def build_ui(web: Any) -> Any:
    from trame.ui.vuetify3 import VAppLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    ctrl = web.ctrl
    with VAppLayout(web.server, full_height=True) as layout:
        with v3.VNavigationDrawer(permanent=True, width=390, location="left"):
            with v3.VContainer(classes="pa-2", style="font-size: 13px"):
                html.Div("{{ rater_id }} ({{ role }}) — {{ case_id || 'no case open' }}", id="identity",
                         classes="text-subtitle-2")
                html.Div("{{ error }}", id="error", v_show="error", classes="text-error my-1")
                html.Div("{{ message }}", id="message", v_show="message", classes="text-success my-1")
                _queue(html, v3, web)
                with html.Div(v_if="role === 'annotator' && case_id", id="annotate-panel"):
                    _annotator(html, v3, ctrl)
                with html.Div(v_if="(role === 'reviewer' || role === 'arbitrator') && case_id", id="review-panel"):
                    _reviewer(html, v3, ctrl)
                with html.Div(v_if="role === 'datamanager'", id="manage-panel"):
                    _manager(html, v3, ctrl)
        with v3.VMain():
            with html.Div(style="display: flex; flex-direction: column; height: 100vh"):
                with html.Div(v_show="case_id", classes="d-flex align-center px-2", style="height: 40px"):
                    html.Span("Slice", classes="mr-2")
                    v3.VSlider(id="slice-slider", v_model=("slice_offset", 0.0), min=("slice_min", 0.0),
                               max=("slice_max", 1.0), step=("slice_step", 1.0), hide_details=True, density="compact")
                    html.Span("{{ Number(slice_offset).toFixed(1) }} mm", id="slice-value", classes="mx-2")
                    v3.VBtn("Fit", id="fit", size="small", click=web.fit)
                with html.Div(id="views", style="flex: 1 1 auto; position: relative; display: flex"):
                    web.scene.layouts.initialize_layout_grid(layout)
    return layout


def _table(html: Any, rows: str, cols: list[tuple[str, str]], click: Any = None, row_id: str = "",
           table_id: str = "", selected: str = "") -> None:
    """A clickable table of state ``rows``; ``selected``: JS condition on ``row`` marking the selected row."""
    with html.Table(id=table_id, style="width: 100%; border-collapse: collapse; font-size: 12px"):
        with html.Tr():
            for title, _expr in cols:
                html.Th(title, style="text-align: left")
        extra = {"click": click} if click is not None else {}
        if selected:
            extra.update(classes=(f"({selected}) ? 'ais-row ais-selected' : 'ais-row'",),
                         style=(f"({selected}) ? 'cursor: pointer; background: #cfe3ff' : 'cursor: pointer'",))
        else:
            extra.update(classes="ais-row", style="cursor: pointer")
        with html.Tr(v_for=f"(row, i) in {rows}", key="i", id=row_id, **extra):
            for _title, expr in cols:
                html.Td("{{ " + expr + " }}")


def _queue(html: Any, v3: Any, web: Any) -> None:
    html.Div("Queue", classes="text-subtitle-2 mt-2")
    v3.VSelect(v_model=("queue_filter", "all cases"), items=("['waiting for me', 'all cases']",),
               density="compact", hide_details=True, id="queue-filter")
    _table(html, "queue", [("Case", "row.case_id"), ("State", "row.state"), ("Waiting for", "row.waiting_for")],
           click=(web.open_case, "[row.case_id]"), table_id="queue")


def _annotator(html: Any, v3: Any, ctrl: Any) -> None:
    html.Div("Returned to you for re-annotation: {{ returned }}", v_show="returned", id="returned",
             classes="text-warning my-1", style="white-space: pre-wrap")
    _view_controls(html, v3, ctrl)
    html.Div("Threshold then refine", classes="text-subtitle-2 mt-3")
    with html.Div(classes="d-flex align-center"):
        v3.VSlider(id="adc-threshold", v_model=("adc_threshold", 620.0), min=300, max=900, step=10,
                   hide_details=True, density="compact")
        html.Span("ADC < {{ adc_threshold }}", id="adc-value", classes="ml-2")
    _candidate_source(html, v3)
    with html.Div(classes="d-flex flex-wrap ga-1"):
        v3.VBtn("Preview", id="preview", size="small", click=ctrl.preview_threshold)
        v3.VBtn("Apply threshold", id="apply-threshold", size="small", color="primary", click=ctrl.apply_threshold,
                loading=("busy",))
        v3.VBtn("Refine in DWI range", id="refine", size="small", click=(ctrl.refine, "[!refine_on]"),
                 color=("refine_on ? 'primary' : undefined",))
        v3.VBtn("Undo", id="undo", size="small", click=ctrl.undo, disabled=("!can_undo",))
        v3.VBtn("Redo", id="redo", size="small", click=ctrl.redo, disabled=("!can_redo",))
    html.Div("Segment: {{ segment_voxels }} voxels", id="segment-voxels")
    html.Div("Tools", classes="text-subtitle-2 mt-2")
    with v3.VBtnToggle(v_model=("tool", "none"), density="compact", mandatory=True, id="tools"):
        for name in ("none", "paint", "erase", "draw", "scissors", "islands"):
            v3.VBtn(name, value=name, id=f"tool-{name}", size="small")
    with html.Div(classes="d-flex align-center"):
        v3.VSlider(id="brush", v_model=("brush_mm", 5.0), min=1, max=30, step=1, hide_details=True,
                   density="compact")
        html.Span("brush {{ brush_mm }} mm", classes="ml-2")
    _islands_scissors(html, v3, ctrl)
    html.Div("Candidates (click to jump)", classes="text-subtitle-2 mt-2")
    _table(html, "candidates", [("#", "row.id"), ("ml", "Number(row.volume_ml).toFixed(2)"),
                                ("ADC", "Number(row.mean_adc).toFixed(0)"),
                                ("conf.", "Number(row.confidence).toFixed(2)"), ("from", "row.source")],
           click=(ctrl.pick_candidate, "[row.id]"), row_id="candidate-row", table_id="candidates",
           selected="row.id === candidate_id")
    html.Div("Uncertain region at the crosshair", classes="text-subtitle-2 mt-2")
    v3.VTextField(v_model=("note_text", ""), label="What is doubtful, how handled", id="note-text",
                  density="compact", hide_details=True)
    with html.Div(classes="d-flex align-center ga-1"):
        v3.VSelect(v_model=("note_decision",), items=("note_decisions",), density="compact", hide_details=True)
        v3.VBtn("Add note", id="add-note", size="small", click=ctrl.add_note)
    _table(html, "notes", [("Note", "row.note"), ("Decision", "row.decision")],
           click=(ctrl.jump, "[row.position_ras]"), table_id="notes")
    _screening(html, v3, ctrl)
    v3.VCheckbox(v_model=("no_visible_lesion", False), label="No visible lesion", density="compact",
                 hide_details=True, id="no-lesion")
    v3.VBtn("Submit", id="submit", color="success", block=True, click=ctrl.submit)


def _reviewer(html: Any, v3: Any, ctrl: Any) -> None:
    html.Div("A = {{ raters_ab.A }}, B = {{ raters_ab.B }}", id="raters-ab", classes="mt-2")
    html.Div("Escalated: {{ escalation }}", v_show="escalation", id="escalation", classes="text-warning")
    html.Div("Agreement", classes="text-subtitle-2 mt-2")
    _table(html, "metrics", [("Metric", "row.label"), ("Value", "row.text")], table_id="metrics")
    html.Div("Lesions (click to jump)", classes="text-subtitle-2 mt-2")
    _table(html, "lesions", [("#", "row.id"), ("Match", "row.match"), ("A ml", "row.volume_a_text"),
                             ("B ml", "row.volume_b_text")],
           click=(ctrl.jump, "[row.centroid_ras]"), row_id="lesion-row", table_id="lesions")
    v3.VTextField(v_model=("reason", ""), label="Reason (escalation, edits)", id="reason", density="compact",
                  hide_details=True, classes="mt-2")
    with html.Div(classes="d-flex flex-wrap ga-1 mt-1"):
        for decision, label in (("accept_a", "Accept A"), ("accept_b", "Accept B"), ("union", "Union"),
                                ("intersection", "Intersection")):
            v3.VBtn(label, id=f"decide-{decision}", size="small", click=(ctrl.decide, f"['{decision}']"),
                    disabled=("decided",))
        v3.VBtn("Edit a copy", id="start-edit", size="small", click=ctrl.start_edit)
        v3.VBtn("Accept edited", id="decide-edited", size="small", click=(ctrl.decide, "['edited']"),
                disabled=("decided",))
        v3.VBtn("Escalate", id="escalate", size="small", color="warning", click=ctrl.escalate,
                v_if="role === 'reviewer'")
    with html.Div(classes="d-flex flex-wrap ga-1 mt-1"):
        for sides, label in ((["A"], "Return to A"), (["B"], "Return to B"), (["A", "B"], "Return to both")):
            v3.VBtn(label, id="return-" + "".join(sides).lower(), size="small", click=(ctrl.return_case, f"[{sides}]"),
                    disabled=("decided",))


def _manager(html: Any, v3: Any, ctrl: Any) -> None:
    with html.Div(classes="d-flex flex-wrap ga-1 mt-2"):
        v3.VBtn("Status table", id="status", size="small", click=ctrl.status_table)
        v3.VBtn("Run QC", id="qc", size="small", click=ctrl.run_qc)
        v3.VBtn("Acceptance report", id="report", size="small", click=ctrl.report)
    _table(html, "status_rows", [("Case", "row.case_id"), ("State", "row.state"), ("Annotators", "row.annotators"),
                                 ("Waiting for", "row.waiting_for"), ("Screening", "row.screening"),
                                 ("Excluded because", "row.excluded")], table_id="status-table")
    html.Pre("{{ dm_text }}", id="dm-text", style="white-space: pre-wrap")
    html.A("Open the acceptance report", id="report-link", href=("report_url",), target="_blank",
           v_show="report_url")


def _view_controls(html: Any, v3: Any, ctrl: Any) -> None:
    """Layout toggle (2×2 with T1/T2 when present / DWI in 3 planes) and window presets per sequence."""
    from AISAnnotationLib.display import ADC_RANGES, PERCENTILE_PRESETS

    with html.Div(classes="d-flex flex-wrap align-center ga-1 mt-2"):
        html.Span("Layout", classes="mr-1")
        for kind, label in (("2x2", "Sequences"), ("dwi3plane", "DWI 3 planes")):
            v3.VBtn(label, id=f"layout-{kind}", size="small", click=(ctrl.set_layout, f"['{kind}']"),
                    color=(f"layout === '{kind}' ? 'primary' : undefined",))
    html.Div("Window", classes="text-subtitle-2 mt-1")
    for seq in ("dwi", "adc", "eadc", "flair", "t1w", "t2w"):
        names = [n for n, _ in (ADC_RANGES if seq == "adc" else PERCENTILE_PRESETS)]
        with html.Div(v_if=f"wl_presets.{seq}", classes="d-flex flex-wrap align-center ga-1"):
            html.Span(seq.upper(), style="width: 44px")
            for i, name in enumerate(names):
                v3.VBtn(name, id=f"wl-{seq}-{i}", size="x-small", click=(ctrl.set_window, f"['{seq}', {i}]"),
                        color=(f"wl_choice.{seq} === wl_presets.{seq}[{i}] ? 'primary' : undefined",))


def _candidate_source(html: Any, v3: Any) -> None:
    """Where 'Apply' takes candidates from: classical, a configured trained model (by name and version), or both."""
    with html.Div(classes="d-flex ga-1 mt-1", v_if="models.length"):
        v3.VSelect(v_model=("pre_source", "classical"), items=("pre_sources",), item_title="title",
                   item_value="value", label="Candidates from", id="pre-source", density="compact",
                   hide_details=True)
        v3.VSelect(v_model=("model_key", ""), items=("models",), item_title="title", item_value="key",
                   label="Model", id="model-key", density="compact", hide_details=True,
                   v_show="pre_source !== 'classical'")
    html.Div("{{ (models.find(m => m.key === model_key) || {}).licence }} — "
             "{{ (models.find(m => m.key === model_key) || {}).citation }}", id="model-card",
             v_if="models.length && pre_source !== 'classical'", style="font-size: 11px")


def _islands_scissors(html: Any, v3: Any, ctrl: Any) -> None:
    with html.Div(classes="d-flex flex-wrap align-center ga-1"):
        v3.VBtn("Keep largest island", id="keep-largest", size="small", click=(ctrl.islands, "['keep_largest']"))
        v3.VBtn("Remove small islands", id="remove-small", size="small", click=(ctrl.islands, "['remove_small']"))
        v3.VTextField(v_model=("island_min", 10), id="island-min", label="< voxels", type="number",
                      density="compact", hide_details=True, style="max-width: 90px")
    with html.Div(classes="d-flex flex-wrap align-center ga-1"):
        for mode, label in (("keep_selected", "Keep clicked island"), ("remove_selected", "Remove clicked island")):
            v3.VBtn(label, id=f"island-{mode.replace('_', '-')}", size="small",
                    click=(ctrl.island_pick, f"['{mode}']"),
                    color=(f"tool === 'islands' && island_pick === '{mode}' ? 'primary' : undefined",))
    with html.Div(classes="d-flex ga-1"):
        v3.VSelect(v_model=("scissors_fill", "erase_inside"), label="Scissors", id="scissors-fill",
                   items=("['erase_inside', 'erase_outside', 'fill_inside', 'fill_outside']",),
                   density="compact", hide_details=True)
        v3.VSelect(v_model=("scissors_slices", "all"), label="Slices", id="scissors-slices",
                   items=("['all', 'this']",), density="compact", hide_details=True)


def _screening(html: Any, v3: Any, ctrl: Any) -> None:
    """The screening form (consensus R4): Likert 1–5 per sequence, artifacts, exclusions, note."""
    from AISAnnotationMRML.workspace import FORM_ARTIFACTS, FORM_EXCLUSIONS, FORM_LIKERT

    html.Div("Screening (Likert 1-5 per sequence)", classes="text-subtitle-2 mt-2")
    for seq in FORM_LIKERT:
        with html.Div(v_if=f"screen_seqs.includes('{seq}')", classes="d-flex align-center ga-1"):
            html.Span(seq.upper(), style="width: 44px")
            for n in range(1, 6):
                v3.VBtn(str(n), id=f"likert-{seq}-{n}", size="x-small", click=f"screening['likert.{seq}'] = {n}",
                        color=(f"screening['likert.{seq}'] === {n} ? 'primary' : undefined",))
    with html.Div(classes="d-flex flex-wrap"):
        for a in FORM_ARTIFACTS:
            v3.VCheckbox(v_model=f"screening['artifact.{a}']", label=a, id=f"artifact-{a}", density="compact",
                         hide_details=True)
    with html.Div(classes="d-flex flex-wrap"):
        for e in FORM_EXCLUSIONS:
            v3.VCheckbox(v_model=f"screening['exclusion.{e}']", label=e.replace("_", " "), id=f"exclusion-{e}",
                         density="compact", hide_details=True)
    v3.VTextField(v_model="screening.note", label="Screening note", id="screening-note", density="compact",
                  hide_details=True)
    v3.VBtn("Save screening", id="save-screening", size="small", click=(ctrl.save_screening, "[screening]"))
