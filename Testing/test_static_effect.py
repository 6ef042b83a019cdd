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
