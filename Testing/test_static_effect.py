"""Static checks of the segment editor effect (it only runs inside Slicer)."""

from __future__ import annotations

import ast
import re

from aistest import REPO

MODULE_DIR = REPO / "AISAnnotation"
EFFECT = MODULE_DIR / "SegmentEditorAISThresholdLib" / "SegmentEditorEffect.py"
HIDDEN = MODULE_DIR / "SegmentEditorAISThreshold.py"


def _classes(path):
    tree = ast.parse(path.read_text(), feature_version=(3, 9))
    return {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}


def test_effect_files_listed_in_cmake_with_icon():
    cm = (MODULE_DIR / "CMakeLists.txt").read_text()
    for rel in ("SegmentEditorAISThreshold.py", "SegmentEditorAISThresholdLib/__init__.py",
                "SegmentEditorAISThresholdLib/SegmentEditorEffect.py",
                "Resources/Icons/SegmentEditorAISThreshold.png"):
        assert re.search(rf"^\s*{re.escape(rel)}\s*$", cm, flags=re.M), rel
        assert (MODULE_DIR / rel).is_file(), rel
    assert cm.count("slicerMacroBuildScriptedModule(") == 2
    assert "NAME ${EFFECT_MODULE_NAME}" in cm and "set(EFFECT_MODULE_NAME SegmentEditorAISThreshold)" in cm


def test_effect_defines_what_the_factory_needs():
    cls = _classes(EFFECT)["SegmentEditorEffect"]
    assert [b.id for b in cls.bases] == ["AbstractScriptedSegmentEditorEffect"]
    methods = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
    need = {"__init__", "clone", "icon", "helpText", "setupOptionsFrame", "setMRMLDefaults", "updateGUIFromMRML",
            "updateMRMLFromGUI", "activate", "deactivate", "onApply", "cleanup"}
    assert need <= methods, need - methods
    src = EFFECT.read_text()
    assert re.search(r'scriptedEffect\.name = "AIS threshold"', src)
    assert "setPythonSource(__file__" in src  # clone re-creates the effect from this file
    assert "saveStateForUndo()" in src and "modifySelectedSegmentByLabelmap" in src
    assert "SegmentEditorAISThreshold.png" in src


def test_effect_does_no_math_itself():
    tree = ast.parse(EFFECT.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
    assert "numpy" not in imported and "SimpleITK" not in imported and "scipy" not in imported
    assert {"AISAnnotationLib", "AISAnnotationMRML"} <= imported


def test_hidden_module_registers_effect_at_startup():
    classes = _classes(HIDDEN)
    mod = classes["SegmentEditorAISThreshold"]
    assert [b.id for b in mod.bases] == ["ScriptedLoadableModule"]
    src = HIDDEN.read_text()
    assert "self.parent.hidden = True" in src
    assert 'slicer.app.connect("startupCompleted()", self.registerEditorEffect)' in src
    assert 'self.__class__.__name__ + "Lib/SegmentEditorEffect.py"' in src
    assert "SegmentEditorAISThresholdTest" in classes
    assert "slicer_add_python_unittest(SCRIPT ${EFFECT_MODULE_NAME}.py)" in (MODULE_DIR / "CMakeLists.txt").read_text()


def test_effect_runs_the_browser_library_path_and_records_what_it_applied():
    """Model inputs come from the case in the scene (not only DWI/ADC), the choice is the browser's, and Apply
    keeps the threshold/source/model on the segmentation for the submission's AISParameters."""
    src = EFFECT.read_text()
    assert "preannotate_in_scene(slicer.mrmlScene" in src and "context_images" not in src and "run_model" not in src
    assert "from AISAnnotationLib.ai.catalog import SOURCES" in src and not re.search(r"^SOURCES\s*=", src, re.M)
    apply_src = ast.get_source_segment(src, next(f for f in _classes(EFFECT)["SegmentEditorEffect"].body
                                                 if isinstance(f, ast.FunctionDef) and f.name == "onApply"))
    assert apply_src.index("modifySelectedSegmentByLabelmap") < apply_src.index("record_tool_parameters(")
    bridge = (MODULE_DIR / "AISAnnotationMRML" / "annotator_actions.py").read_text()
    assert "recorded_tool_parameters(ws.segmentation)" in bridge
