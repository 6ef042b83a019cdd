"""The Slicer module, the effect and the hidden module checked against Slicer's and CTK's API surface (issue 18).

The table (Testing/data/slicer_api/slicer_api.json) holds names and signatures read from Slicer's
and CTK's own sources (repository + commit per source) and from the installed slicer-core; the
checker reads our sources (AST) and the .ui (XML). A deliberately wrong fixture proves it can fail.
"""

from __future__ import annotations

import textwrap

import pytest
from aistest_slicer_api import Report, check_module, load_table

from aistest import REPO

MODULE = REPO / "AISAnnotation"
PY_FILES = [MODULE / "AISAnnotation.py", MODULE / "SegmentEditorAISThreshold.py",
            MODULE / "SegmentEditorAISThresholdLib" / "SegmentEditorEffect.py"]
UI_FILE = MODULE / "Resources" / "UI" / "AISAnnotation.ui"


@pytest.fixture(scope="module")
def table():
    return load_table()


def test_every_source_names_repository_and_commit(table):
    for key, src in table["sources"].items():
        assert src.get("package") or src.get("reference") or key == "unread" or (
            src["repository"] and len(src["commit"].split()[0]) == 40), key
    assert table["versions"]["5.8"]["commit"] == "4c1546f620424a279d6d5daa973292ee2ae32d4f"


def test_the_real_module_uses_only_names_that_exist(table, capsys):
    rep = check_module(table, PY_FILES, UI_FILE, Report())
    assert rep.problems == []
    counts = rep.counts()
    # every category the issue names is covered, in both versions where a source exists
    for cat in ("slicer.util", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper", "effect hook",
                "widget class", "widget property", "connect() signal", "qt"):
        assert counts.get(f"{cat} @ current"), cat
    for cat in ("slicer.parameterNodeWrapper", "parameter-node field type", "widget class", "widget property", "qt"):
        assert counts.get(f"{cat} @ 5.8"), cat
    with capsys.disabled():
        print("\nnames checked per category and version:", counts)
        print(f"unverified (no source read for that version): {len(rep.unverified)}")


def test_a_wrong_fixture_is_caught(table, tmp_path):
    py = tmp_path / "Fake.py"
    py.write_text(textwrap.dedent('''
        import ctk, qt, slicer
        from slicer.parameterNodeWrapper import parameterNodeWrapper, Choise
        from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

        @parameterNodeWrapper
        class FakeParameterNode:
            volume: slicer.vtkMRMLScalarVolumeNode
            seen: set

        class FakeWidget:
            def setup(self):
                node = slicer.util.getNod("x")
                slider = ctk.ctkSliderWidget()
                slider.connect("valueChange(double)", self.setup)
                timer = qt.QTimer()
                timer.connect("timeout()", self.setup)
                slicer.mrmlScene.AddNewNodeByClas("vtkMRMLScalarVolumeNode")

        class FakeEffect(AbstractScriptedSegmentEditorEffect):
            def createCursor(self):
                return None
            def activate(self):
                pass
    '''))
    ui = tmp_path / "Fake.ui"
    ui.write_text(textwrap.dedent('''\
        <?xml version="1.0" encoding="UTF-8"?>
        <ui version="4.0"><class>Fake</class>
         <widget class="qMRMLWidget" name="Fake">
          <widget class="qMRMLFooWidget" name="foo"/>
          <widget class="ctkCollapsibleButton" name="box"><property name="colapsed"><bool>true</bool></property></widget>
         </widget>
         <customwidgets>
          <customwidget><class>qMRMLWidget</class><extends>QWidget</extends></customwidget>
          <customwidget><class>qMRMLFooWidget</class><extends>qMRMLWidget</extends></customwidget>
          <customwidget><class>ctkCollapsibleButton</class><extends>QWidget</extends></customwidget>
         </customwidgets>
         <connections><connection><sender>Fake</sender><signal>mrmlSceneChange(vtkMRMLScene*)</signal>
          <receiver>foo</receiver><slot>setMRMLScene(vtkMRMLScene*)</slot></connection></connections>
        </ui>
    '''))
    rep = check_module(table, [py], ui, Report())
    text = "\n".join(rep.problems)
    assert "slicer.util has no 'getNod'" in text
    assert "qMRMLFooWidget" in text and "no property 'colapsed'" in text
    assert "mrmlSceneChange(vtkMRMLScene*)" in text
    assert "connect('valueChange(double)') on ctkSliderWidget" in text
    assert "slicer.parameterNodeWrapper has no 'Choise'" in text
    assert "parameter seen: set" in text
    assert "hook createCursor() should take (widget)" in text
    if load_table() and _slicer_core():
        assert "AddNewNodeByClas" in text
    assert "timeout()" not in text and "activate" not in text  # the right names pass


def _slicer_core() -> bool:
    try:
        import slicer  # noqa: F401
    except ImportError:
        return False
    return True


def test_the_table_matches_the_installed_slicer_core(table):
    slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")
    missing = [n for n in table["slicer.util"]["names"] if not hasattr(slicer.util, n)]
    assert missing == []


def test_pre_58_bracket_needs_a_current_source_too(table):
    """A name read before 5.8 counts for 5.8 only with current evidence (the table's 'about' rule); every pre-5.8
    list names stored sources (repository + commit)."""
    rep = Report(pre_58={"slicer.util": {"loadUI"}})
    rep.ok("slicer.util", "loadUI", ["current"])
    rep.ok("slicer.util", "getNod", ["current"])
    assert rep.counts() == {"slicer.util @ 5.8": 1, "slicer.util @ current": 2}
    rep = Report(pre_58={"slicer.util": {"loadUI"}})
    rep.ok("slicer.util", "loadUI", [])
    assert rep.counts() == {} and len(rep.unverified) == 2
    for category, entry in table["pre_5.8"]["categories"].items():
        for key in entry.get("sources", [entry.get("source")]):
            src = table["sources"][key]
            assert src["repository"] and len(src["commit"]) == 40, (category, key)


def test_segment_editor_widget_properties_are_read_for_58(table):
    rep = check_module(table, PY_FILES, UI_FILE, Report())
    props = rep.checked[("widget property", "5.8")]
    assert {"qMRMLSegmentEditorWidget.sourceVolumeNodeSelectorVisible",
            "qMRMLSegmentEditorWidget.switchToSegmentationsButtonVisible"} <= props
    assert len(rep.unverified) <= 36  # 75 after round 1; each newly read source lowers it
