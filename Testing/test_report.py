"""The acceptance report on the demo workflow dataset: every section, the validator's verdict, valid HTML."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from AISAnnotationLib.cli import main
from AISAnnotationLib.report import SECTION_ORDER
from aistest import bids_errors


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.imgs, self.errors = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        elif tag not in ("meta", "br", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


@pytest.fixture(scope="module")
def workflow_report(tmp_path_factory):
    from AISAnnotationLib.workflow.demo import run_demo_workflow

    root = tmp_path_factory.mktemp("rep") / "wf"
    run_demo_workflow(root)
    assert main(["qc", str(root)]) == 0
    assert main(["qc-score", str(root), "--subject", "02", "--session", "01", "--reader", "rev1",
                 "--likert", "dwi=4", "adc=4", "flair=3", "--artifact", "motion"]) == 0
    out = root.parent / "report"
    rc = main(["report", str(root), "--out", str(out)])
    return root, out, rc


def test_report_has_every_section_and_validator(workflow_report):
    root, out, rc = workflow_report
    rep = json.loads((out / "report.json").read_text())
    assert set(SECTION_ORDER) <= set(rep["sections"])
    nm = rep["sections"]["naming"]
    assert nm["validator"].startswith("bids-validator-deno") and nm["errors"] == 0 and nm["warnings"] > 0
    assert {d["dataset"] for d in nm["datasets"]} >= {"/", "/derivatives/lesions/", "/derivatives/qc/"}
    comp = rep["sections"]["completeness"]
    assert comp["complete"] == 3 and all(r["annotations"] == 2 and r["final_mask"] for r in comp["cases"])
    via = {r["case"]: r["via"] for r in rep["sections"]["agreement"]["cases"]}
    assert via == {"sub-01_ses-01": "review", "sub-02_ses-01": "review", "sub-03_ses-01": "arbitration"}
    assert {r["rater"] for r in rep["sections"]["agreement"]["per_rater"]} == {"ann1", "ann2"}
    assert rep["sections"]["format"]["status"] == "pass"
    assert not any(c["inconsistencies"] for c in rep["sections"]["image_qc"]["cases"])  # the phantom is consistent
    assert all(sec["rule"] for sec in rep["sections"].values())  # every section states its rule
    qc2 = next(r for r in rep["sections"]["image_qc"]["cases"] if r["case"] == "sub-02_ses-01")
    assert qc2["reader_scores"][0]["likert"] == {"dwi": 4, "adc": 4, "flair": 3} and not qc2["excluded"]
    assert any(x["rule"] == "coverage" for x in qc2["rules"])
    snaps = rep["sections"]["snapshots"]
    try:
        import AISAnnotationMRML.snapshot  # noqa: F401  (needs slicer-core)
    except ImportError:
        assert snaps["available"] is False and "unavailable" in snaps["summary"]
    else:
        assert snaps["status"] == "pass" and all((out / r["png"]).is_file() for r in snaps["cases"])
    assert rep["verdict"]["status"] == "pass" and rc == 0


def test_report_html_is_a_self_contained_page(workflow_report):
    _, out, _ = workflow_report
    html = (out / "report.html").read_text()
    p = _Page()
    p.feed(html)
    p.close()
    assert p.errors == [] and p.stack == []
    assert set(SECTION_ORDER) <= p.ids and "validator-errors" in p.ids
    assert len(p.imgs) >= 5 and all(s.startswith("data:image/png;base64,") for s in p.imgs)
    assert "Acceptance: PASS" in html and "Bland" in html and "Readers&#x27; subjective QC" not in html
    assert "Readers' subjective QC" in html and html.count("<details>") == 3
    assert "http://" not in html and "https://" not in html.replace("https://github.com/AISAnnotation", "")


def test_streamed_report_equals_the_whole_report_rendered_in_memory(workflow_report):
    """report.json / report.html were written piece by piece from staged rows; rendering the same content at
    once (json.dumps, render_html with every image) gives the same bytes: agreement, per-rater items, volumes,
    reader scores and snapshots included."""
    import base64

    from AISAnnotationLib.report.html import render_html

    _, out, _ = workflow_report
    text = (out / "report.json").read_text(encoding="utf-8")
    rep = json.loads(text)
    assert text == json.dumps(rep, indent=2, ensure_ascii=False) + "\n"
    assert rep["sections"]["agreement"]["per_rater"][0]["items"] and rep["sections"]["volumes"]["cases"]
    images = {p.stem: "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode() for p in out.glob("*.png")}
    for r in rep["sections"]["snapshots"]["cases"]:
        if r.get("png"):
            images[f"snapshot:{r['case']}"] = images.pop(r["png"][:-4])
    assert render_html(rep, images) == (out / "report.html").read_text(encoding="utf-8")


def test_report_fails_when_a_case_is_incomplete(demo_copy, tmp_path, capsys):
    import shutil

    # a session without DWI cannot be loaded: reported, not a crash
    bad = demo_copy / "sub-04" / "ses-01" / "anat"
    bad.mkdir(parents=True)
    for ext in (".nii.gz", ".json"):
        shutil.copy(demo_copy / "sub-01/ses-01/anat" / f"sub-01_ses-01_FLAIR{ext}", bad / f"sub-04_ses-01_FLAIR{ext}")
    from AISAnnotationLib.bids import add_participant
    from AISAnnotationLib.qc.session import run_session_qc

    add_participant(demo_copy, "04")
    rec = run_session_qc(demo_copy, "04", "01")
    assert rec["excluded"] and "no DWI" in rec["reason"] and rec["AISPlaceholderMask"]
    assert bids_errors(demo_copy) == []  # the placeholder keeps the record validator-clean
    rc = main(["report", str(demo_copy), "--out", str(tmp_path / "r"), "--no-snapshots", "--no-validator"])
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rc == 1 and rep["verdict"]["status"] == "fail"
    missing = {r["case"]: r["missing"] for r in rep["sections"]["completeness"]["cases"]}
    assert "final mask" in missing["sub-01_ses-01"] and "2 independent annotation(s)" in missing["sub-01_ses-01"]
    assert "sub-04_ses-01" in rep["load_errors"]
    assert next(r for r in rep["sections"]["completeness"]["cases"] if r["case"] == "sub-04_ses-01")["excluded"]
    assert rep["sections"]["naming"]["status"] == "unknown"
    assert rep["sections"]["image_qc"]["status"] == "fail"


def test_report_renders_in_headless_chromium(workflow_report, tmp_path):
    """Optional: only where Chromium is installed (apt-get install chromium)."""
    import shutil
    import subprocess

    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        pytest.skip("no headless Chromium installed (optional check)")
    _, out, _ = workflow_report
    png = tmp_path / "page.png"
    proc = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2000",
                           f"--screenshot={png}", (out / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert png.is_file(), proc.stderr[-1000:]
    Image = pytest.importorskip("PIL.Image")
    im = Image.open(png)
    assert im.size == (1200, 2000)
    import numpy as np

    assert np.unique(np.asarray(im.convert("L").resize((60, 100)))).size > 20  # a page, not a blank screen
