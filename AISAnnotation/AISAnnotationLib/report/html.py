"""Self-contained HTML rendering of the acceptance report (no external CSS, JS or images).

:func:`iter_html` yields the page in pieces (its tables row by row, its images looked up one at
a time), so the report is written without the whole page — or every session's row — in memory;
:func:`render_html` is the same text as one string.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from html import escape
from typing import Any, Iterable, Optional, Union

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3;text-align:left} .pass{color:#1e7d32;font-weight:600} .fail{color:#c0392b;font-weight:600}
.warning{color:#b36b00;font-weight:600} .unknown{color:#666;font-weight:600}
.verdict{font-size:22px;padding:10px 16px;border-radius:6px;display:inline-block;margin:8px 0}
.verdict.pass{background:#e3f4e5} .verdict.fail{background:#fbe5e3}
.figs img{max-width:520px;margin:6px;border:1px solid #eee} .snap img{max-width:520px;border:1px solid #ccc}
small{color:#666} details{margin:4px 0} summary{cursor:pointer;color:#1f5fa8}
"""

_TITLES = {
    "completeness": "1. Completeness", "format": "2. Format (masks)", "metadata": "3. Metadata completeness",
    "naming": "4. Naming (official BIDS validator)", "image_qc": "5. Image quality control",
    "agreement": "6. Inter-rater agreement", "volumes": "7. Lesion volumes", "snapshots": "8. Case snapshots",
}


def _st(status: Optional[str]) -> str:
    s = status or "unknown"
    return f'<span class="{escape(s)}">{escape(s.upper())}</span>'


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, (list, tuple)):
        return "; ".join(_fmt(x) for x in v) or "—"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) or "—"
    return str(v)


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The table in pieces: head, one piece per row, foot (``rows`` is consumed lazily)."""
    h = "".join(f"<th>{escape(x)}</th>" for x in headers)
    yield f"<table><thead><tr>{h}</tr></thead><tbody>"
    for r in rows:
        yield "<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in r) + "</tr>"
    yield "</tbody></table>"


def _table_str(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    return "".join(_table(headers, rows))


def _img(src: Optional[str], alt: str) -> str:
    return f'<img src="{src}" alt="{escape(alt)}">' if src else ""


Part = Union[str, Iterator[str]]


def render_html(rep: dict[str, Any], images: Mapping[str, str]) -> str:
    """The report as one HTML page; ``images``: figure name (``snapshot:<case>``) → data URI."""
    return "".join(iter_html(rep, images))


def iter_html(rep: dict[str, Any], images: Mapping[str, str]) -> Iterator[str]:
    """The page of :func:`render_html` in pieces: its parts joined by newlines, each table row by row."""
    for i, part in enumerate(_parts(rep, images)):
        if i:
            yield "\n"
        if isinstance(part, str):
            yield part
        else:
            yield from part


def _parts(rep: dict[str, Any], images: Mapping[str, str]) -> Iterator[Part]:
    s = rep["sections"]
    v = rep["verdict"]
    yield from [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(rep['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(rep['title'])}</h1>",
        f"<small>dataset {escape(rep['dataset'])} · {len(rep['sessions'])} session(s) · generated "
        f"{escape(rep['generated'])} by {escape(rep['tool'])}</small>",
        f'<div class="verdict {escape(v["status"])}">Acceptance: {escape(v["status"].upper())}</div>',
        "<ul>" + "".join(f"<li>{escape(r)}</li>" for r in v["reasons"]) + "</ul>",
        "".join(f"<p class='warning'>Deviation from the consensus: {escape(d)}</p>" for d in v.get("deviations", [])),
        _table(["section", "status", "summary", "rule"],
               [(_TITLES[k], s[k]["status"], s[k]["summary"], s[k].get("rule")) for k in _TITLES]),
    ]
    if rep.get("load_errors"):
        yield ("<p class='fail'>Sessions that could not be loaded:</p>" +
               _table_str(["case", "error"], rep["load_errors"].items()))

    c = s["completeness"]
    yield f'<h2 id="completeness">{_TITLES["completeness"]} {_st(c["status"])}</h2><p>{escape(c["summary"])}</p>'
    yield _table(["case", "annotations", "annotators", "state", "review / arbitration", "final mask", "missing",
                  "excluded at QC"],
                 ((r["case"], r["annotations"], r["annotators"], r["state"], r["review"], r["final_mask"],
                   r["missing"], r["excluded"]) for r in c["cases"]))

    f = s["format"]
    yield f'<h2 id="format">{_TITLES["format"]} {_st(f["status"])}</h2><p>{escape(f["summary"])}</p>'
    yield _table(["mask", "NIfTI", "voxels", "ok", "problems"],
                 ((r["file"], r["nifti"], r["voxels"], r["ok"], r["problems"]) for r in f["masks"]))

    m = s["metadata"]
    yield f'<h2 id="metadata">{_TITLES["metadata"]} {_st(m["status"])}</h2><p>{escape(m["summary"])}</p>'
    yield "<p><small>required: " + escape(_fmt(m["required"])) + "</small></p>"
    yield _table(["file", "sidecar", "missing fields"], ((r["file"], r["sidecar"], r["missing"]) for r in m["files"]))

    n = s["naming"]
    yield f'<h2 id="naming">{_TITLES["naming"]} {_st(n["status"])}</h2><p>{escape(n["summary"])}</p>'
    yield (f"<p>validator: {escape(_fmt(n['validator']))}; errors <b id='validator-errors'>{escape(_fmt(n['errors']))}"
           f"</b>, warnings <b id='validator-warnings'>{escape(_fmt(n['warnings']))}</b></p>")
    yield _table(["dataset", "errors", "warnings", "issue codes"],
                 [(d["dataset"], d["errors"], d["warnings"], d["codes"]) for d in n["datasets"]])
    errs = [(d["dataset"], e["code"], e["location"]) for d in n["datasets"] for e in d["error_details"]]
    if errs:
        yield _table(["dataset", "error", "file"], errs)

    q = s["image_qc"]
    yield f'<h2 id="image_qc">{_TITLES["image_qc"]} {_st(q["status"])}</h2><p>{escape(q["summary"])}</p>'
    yield _table(["case", "rules", "excluded", "reason", "failed rules", "unknown (missing metadata)", "SNR",
                  "CNR dwi", "readers"],
                 ((r["case"], r["status"], r["excluded"], r["reason"] or None, r["failed_rules"], r["unknown"],
                   r["snr"], r["cnr_dwi"], r["readers"]) for r in q["cases"]))
    yield '<div class="figs">' + _img(images.get("snr"), "SNR per case") + "</div>"
    if any(r["reader_scores"] for r in q["cases"]):
        yield "<p>Readers' subjective QC (Likert 1–5 per sequence):</p>"
        yield _table(["case", "reader", "Likert", "artifacts", "exclusions", "time"],
                     ((r["case"], x["reader"], x["likert"], x["artifacts"], x["exclusions"], x["time"])
                      for r in q["cases"] for x in r["reader_scores"]))
    for r in q["cases"]:
        yield (f"<details><summary>{escape(r['case'])}: every acquisition rule ({len(r['rules'])})</summary>" +
               _table_str(["sequence", "rule", "status", "measured", "requirement", "detail"],
                          [(x["sequence"], x["rule"], x["status"], x["measured"], x["requirement"],
                            x["detail"] or None) for x in r["rules"]]) + "</details>")
    if any(r["inconsistencies"] for r in q["cases"]):
        yield "<p>Metadata inconsistent with the image geometry:</p>"
        yield _table(["case", "inconsistency"], ((r["case"], i) for r in q["cases"] for i in r["inconsistencies"]))

    a = s["agreement"]
    yield f'<h2 id="agreement">{_TITLES["agreement"]} {_st(a["status"])}</h2><p>{escape(a["summary"])}</p>'
    yield ('<div class="figs">' + _img(images.get("dice"), "Dice distribution") +
           _img(images.get("lesion_f1"), "lesion F1 distribution") +
           _img(images.get("bland_altman"), "Bland-Altman plot of volumes") + "</div>")
    yield _table(["case", "raters", "Dice", "lesion F1", "vol A (ml)", "vol B (ml)", "|ΔV| (ml)", "Δcount",
                  "HD95 (mm)", "auto-accepted", "finalised via"],
                 ((r["case"], r["raters"], r["dice"], r["lesion_f1"], r["volume_a_ml"], r["volume_b_ml"],
                   r["volume_diff_ml"], r["count_diff"], r["hd95_mm"], r["accepted"], r["via"]) for r in a["cases"]))
    yield "<p>Per-rater statistics (each rater's mask against the final mask):</p>"
    yield _table(["rater", "cases", "mean Dice vs final", "min Dice vs final", "mean lesion F1 vs final",
                  "mean volume (ml)"],
                 ((r["rater"], r["cases"], r["dice_vs_final_mean"], r["dice_vs_final_min"],
                   r["lesion_f1_vs_final_mean"], r["mean_volume_ml"]) for r in a["per_rater"]))

    vo = s["volumes"]
    yield f'<h2 id="volumes">{_TITLES["volumes"]} {_st(vo["status"])}</h2><p>{escape(vo["summary"])}</p>'
    yield '<div class="figs">' + _img(images.get("volumes"), "lesion volume distribution") + "</div>"
    yield _table(["case", "volume (ml)", "voxels", "lesions (26-conn.)"],
                 ((r["case"], r["volume_ml"], r["voxels"], r["lesions"]) for r in vo["cases"]))

    sn = s["snapshots"]
    yield f'<h2 id="snapshots">{_TITLES["snapshots"]} {_st(sn["status"])}</h2><p>{escape(sn["summary"])}</p>'
    for r in sn["cases"]:
        src = images.get(f"snapshot:{r['case']}") if r.get("png") else None
        yield (f'<div class="snap"><h3>{escape(r["case"])}</h3>' +
               (_img(src, f"{r['case']} 2x2 snapshot") if src else f"<p>{escape(_fmt(r.get('error')))}</p>") +
               "</div>")
    yield "</body></html>"
