"""Checks CI can run on the Slicer-only parts (the application itself cannot run here)."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET

import pytest

from aistest import REPO

MODULE_DIR = REPO / "AISAnnotation"
PURE_LIB = MODULE_DIR / "AISAnnotationLib"
FORBIDDEN_IN_PURE = {"qt", "ctk", "slicer", "vtk", "vtkmodules", "PythonQt", "__main__"}


def _py_files(d):
    return sorted(p for p in d.rglob("*.py") if "__pycache__" not in p.parts)


def _cmake_listed(cmake_file):
    text = cmake_file.read_text()
    return set(re.findall(r"^\s*([\w/${}.]+\.py)\s*$", text, flags=re.M))


def test_every_module_py_is_listed_in_cmake():
    listed = {s.replace("${MODULE_NAME}", "AISAnnotation") for s in _cmake_listed(MODULE_DIR / "CMakeLists.txt")}
    on_disk = {p.relative_to(MODULE_DIR).as_posix() for p in _py_files(MODULE_DIR)}
    assert on_disk - listed == set(), "add these to AISAnnotation/CMakeLists.txt"
    assert listed - on_disk == set(), "listed in CMake but missing on disk"


def test_every_resource_in_cmake_exists():
    text = (MODULE_DIR / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", "AISAnnotation")
    for res in re.findall(r"^\s*(Resources/\S+)\s*$", text, flags=re.M):
        assert (MODULE_DIR / res).is_file(), res


@pytest.mark.parametrize("path", _py_files(MODULE_DIR), ids=lambda p: p.relative_to(MODULE_DIR).as_posix())
def test_python39_syntax(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


@pytest.mark.parametrize("path", _py_files(PURE_LIB), ids=lambda p: p.relative_to(PURE_LIB).as_posix())
def test_pure_library_imports_no_qt_slicer_vtk(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for n in names:
            assert n.split(".")[0] not in FORBIDDEN_IN_PURE, f"{path.name} imports {n}"


def _ui_widgets(ui_file):
    root = ET.parse(ui_file).getroot()
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


def _ui_names_used(py_file):
    return set(re.findall(r"self\.ui\.(\w+)", py_file.read_text()))


@pytest.mark.parametrize("ui", sorted((MODULE_DIR / "Resources" / "UI").glob("*.ui")), ids=lambda p: p.name)
def test_ui_parses(ui):
    widgets = _ui_widgets(ui)
    assert widgets, f"{ui.name} has no widgets"


def test_widget_uses_only_names_defined_in_its_ui():
    widgets = _ui_widgets(MODULE_DIR / "Resources" / "UI" / "AISAnnotation.ui")
    used = _ui_names_used(MODULE_DIR / "AISAnnotation.py")
    assert used, "the widget uses no ui element"
    missing = used - set(widgets)
    assert not missing, f"self.ui names not in AISAnnotation.ui: {sorted(missing)}"


def test_module_defines_slicer_classes():
    tree = ast.parse((MODULE_DIR / "AISAnnotation.py").read_text())
    classes = {c.name: [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in c.bases]
               for c in tree.body if isinstance(c, ast.ClassDef)}
    assert "ScriptedLoadableModule" in classes["AISAnnotation"]
    assert "ScriptedLoadableModuleWidget" in classes["AISAnnotationWidget"]
    assert "ScriptedLoadableModuleLogic" in classes["AISAnnotationLogic"]
    assert "ScriptedLoadableModuleTest" in classes["AISAnnotationTest"]
    cm = (MODULE_DIR / "CMakeLists.txt").read_text()
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in cm


def test_extension_cmakelists():
    text = (REPO / "CMakeLists.txt").read_text()
    for needle in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                   "EXTENSION_ICONURL", "find_package(Slicer REQUIRED)", "add_subdirectory(AISAnnotation)",
                   "Slicer_EXTENSION_GENERATE_CONFIG", "Slicer_EXTENSION_CPACK"):
        assert needle in text
