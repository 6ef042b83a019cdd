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


def test_screenshots_exist_and_are_shown():
    """The extension's screenshot URLs and the README's images name files in the repository's Resources/."""
    text = (REPO / "CMakeLists.txt").read_text()
    urls = re.search(r'set\(EXTENSION_SCREENSHOTURLS "([^"]*)"\)', text).group(1).split()
    assert len(urls) >= 2
    prefix = "https://raw.githubusercontent.com/AISAnnotation/AISAnnotation/main/"
    for url in urls:
        assert url.startswith(prefix + "Resources/Screenshots/"), url
        png = REPO / url[len(prefix):]
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", url
    shown = re.findall(r"!\[[^]]*\]\((Resources/Screenshots/[^)]+)\)", (REPO / "README.md").read_text())
    assert {REPO / u[len(prefix):] for u in urls} <= {REPO / s for s in shown}


# --------------------------------------------------------------------------------------------------
# The module widget (issue 8): .ui names and classes, parameter node, no arrays / files in the widget.
# --------------------------------------------------------------------------------------------------

MODULE_PY = MODULE_DIR / "AISAnnotation.py"
MODULE_UI = MODULE_DIR / "Resources" / "UI" / "AISAnnotation.ui"

_COMMON = {"enabled", "visible", "toolTip", "connect", "setEnabled", "setVisible"}
# class → (attributes/methods the widget may use, signals it may connect). Taken from the Qt/CTK docs and
# Slicer's Modules/Loadable/Segmentations/Widgets/qMRMLSegmentEditorWidget.h.
WIDGET_API = {
    "QPushButton": (_COMMON | {"text", "checked"}, {"clicked(bool)", "clicked()", "toggled(bool)"}),
    "QCheckBox": (_COMMON | {"checked"}, {"toggled(bool)", "stateChanged(int)"}),
    "QLineEdit": (_COMMON | {"text", "clear"}, {"textChanged(QString)", "editingFinished()"}),
    "QLabel": (_COMMON | {"text", "setText"}, set()),
    "QComboBox": (_COMMON | {"currentText", "currentIndex"}, {"currentIndexChanged(int)"}),
    "QSpinBox": (_COMMON | {"value"}, {"valueChanged(int)"}),
    "QDoubleSpinBox": (_COMMON | {"value"}, {"valueChanged(double)"}),
    "QProgressBar": (_COMMON | {"setValue", "setFormat", "value", "maximum"}, set()),
    "QTextBrowser": (_COMMON | {"setPlainText", "setHtml", "clear"}, set()),
    "QTableWidget": (_COMMON | {"clearContents", "setRowCount", "setItem", "resizeColumnsToContents",
                                "selectionModel", "currentRow", "rowCount", "selectRow"},
                     {"itemSelectionChanged()", "cellClicked(int,int)", "cellDoubleClicked(int,int)"}),
    "ctkCollapsibleButton": (_COMMON | {"collapsed", "text"}, {"contentsCollapsed(bool)"}),
    "ctkCollapsibleGroupBox": (_COMMON | {"collapsed", "title"}, {"toggled(bool)"}),
    "ctkPathLineEdit": (_COMMON | {"currentPath"}, {"currentPathChanged(QString)"}),
    "qMRMLSegmentEditorWidget": (_COMMON | {
        "setMRMLScene", "setMRMLSegmentEditorNode", "setSegmentationNode", "setSourceVolumeNode",
        "setCurrentSegmentID", "setActiveEffectByName", "setActiveEffect", "activeEffect", "installKeyboardShortcuts",
        "uninstallKeyboardShortcuts", "removeViewObservations", "updateWidgetFromMRML", "segmentationNode",
        "currentSegmentID"}, {"currentSegmentIDChanged(QString)"}),
}

# parameterNodeWrapper GUI connectors (Slicer 5.8 Base/Python/slicer/parameterNodeWrapper/guiConnectors.py,
# canRepresent): widget class → parameter types it can hold. "Choice" marks a combo box needing Choice(...).
CONNECTABLE = {
    "QCheckBox": {"bool"}, "ctkCheckBox": {"bool"},
    "QSpinBox": {"int"}, "QSlider": {"int"},
    "QDoubleSpinBox": {"float"}, "ctkSliderWidget": {"float"}, "ctkDoubleSpinBox": {"float"},
    "QComboBox": {"Choice"}, "ctkComboBox": {"Choice"},
    "QLineEdit": {"str"}, "QLabel": {"str"}, "QTextEdit": {"str"},
    "ctkPathLineEdit": {"pathlib.Path"}, "ctkDirectoryButton": {"pathlib.Path"},
}


def _module_tree():
    return ast.parse(MODULE_PY.read_text(), feature_version=(3, 9))


def _class(tree, name):
    return next(c for c in tree.body if isinstance(c, ast.ClassDef) and c.name == name)


def _ui_params(ui_file):
    """widget name → (class, SlicerParameterName) for widgets carrying that dynamic property."""
    out = {}
    for w in ET.parse(ui_file).getroot().iter("widget"):
        for p in w.findall("property"):
            if p.get("name") == "SlicerParameterName":
                out[w.get("name")] = (w.get("class"), p.find("string").text)
    return out


def _ui_uses(tree):
    """(name, attribute or None, signal or None, line) for every ``self.ui.<name>.<attr>`` and every
    ``self.ui.<name>.connect("<signal>", ...)`` in the module."""
    def ui_name(node):
        inner = node.value
        if (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Attribute)
                and isinstance(inner.value.value, ast.Name) and inner.value.value.id == "self"
                and inner.value.attr == "ui"):
            return inner.attr
        return None

    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and ui_name(node):
            uses.append((ui_name(node), node.attr, None, node.lineno))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and ui_name(node.func)
                and node.func.attr == "connect" and node.args and isinstance(node.args[0], ast.Constant)):
            uses.append((ui_name(node.func), None, node.args[0].value, node.lineno))
    return uses


def test_ui_widgets_have_unique_names_and_known_custom_classes():
    root = ET.parse(MODULE_UI).getroot()
    names = [w.get("name") for w in root.iter("widget")]
    assert len(names) == len(set(names)), "duplicate widget names in AISAnnotation.ui"
    custom = {c.find("class").text for c in root.iter("customwidget")}
    for cls in {w.get("class") for w in root.iter("widget")}:
        assert cls.startswith("Q") or cls in custom, f"{cls} used but not declared in <customwidgets>"


def test_widget_ui_uses_match_widget_classes():
    widgets = _ui_widgets(MODULE_UI)
    attrs = _ui_uses(_module_tree())
    assert attrs, "no self.ui.<name>.<attr> found"
    problems = []
    for name, attr, signal, line in attrs:
        cls = widgets.get(name)
        if cls is None:
            problems.append(f"line {line}: self.ui.{name} is not in AISAnnotation.ui")
            continue
        allowed_attrs, allowed_signals = WIDGET_API.get(cls, (None, None))
        if allowed_attrs is None:
            problems.append(f"line {line}: class {cls} of {name} has no entry in WIDGET_API")
        elif attr is not None and attr not in allowed_attrs:
            problems.append(f"line {line}: {cls} {name} has no '{attr}' we know of")
        elif signal is not None and signal not in allowed_signals:
            problems.append(f"line {line}: {cls} {name} has no signal '{signal}'")
    assert not problems, "\n".join(problems)


def test_tables_filled_by_the_widget_are_table_widgets():
    widgets = _ui_widgets(MODULE_UI)
    filled = []
    for node in ast.walk(_module_tree()):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_fillTable":
            arg = node.args[0]
            assert isinstance(arg, ast.Attribute), f"line {node.lineno}: _fillTable needs self.ui.<table>"
            filled.append(arg.attr)
            assert widgets[arg.attr] == "QTableWidget", f"{arg.attr} is a {widgets[arg.attr]}"
    assert {"caseQueueTableWidget", "candidatesTableWidget", "notesTableWidget", "metricsTableWidget",
            "lesionsTableWidget"} <= set(filled)


def test_required_panels_and_controls_exist():
    widgets = _ui_widgets(MODULE_UI)
    required = {
        "bidsRootPathLineEdit": "ctkPathLineEdit", "loadDemoButton": "QPushButton", "raterIdLineEdit": "QLineEdit",
        "roleComboBox": "QComboBox", "caseQueueTableWidget": "QTableWidget", "queueFilterComboBox": "QComboBox",
        "segmentEditorWidget": "qMRMLSegmentEditorWidget", "noVisibleLesionCheckBox": "QCheckBox",
        "submitButton": "QPushButton", "candidatesTableWidget": "QTableWidget", "notesTableWidget": "QTableWidget",
        "metricsTableWidget": "QTableWidget", "lesionsTableWidget": "QTableWidget", "acceptAButton": "QPushButton",
        "acceptBButton": "QPushButton", "unionButton": "QPushButton", "intersectionButton": "QPushButton",
        "acceptEditedButton": "QPushButton", "escalateButton": "QPushButton", "decisionReasonLineEdit": "QLineEdit",
        "annotatorCollapsibleButton": "ctkCollapsibleButton", "reviewerCollapsibleButton": "ctkCollapsibleButton",
        "arbitratorCollapsibleButton": "ctkCollapsibleButton", "progressBar": "QProgressBar",
        "returnButton": "QPushButton", "returnToComboBox": "QComboBox", "datasetStatusButton": "QPushButton",
        "datasetStatusLabel": "QLabel", "runQCButton": "QPushButton", "writeReportButton": "QPushButton",
    }
    for seq in ("dwi", "adc", "eadc", "flair", "t1w", "t2w"):
        required[f"{seq}LikertSpinBox"] = "QSpinBox"
    wrong = {n: (widgets.get(n), c) for n, c in required.items() if widgets.get(n) != c}
    assert not wrong, f"missing or wrong class (have, want): {wrong}"


def _param_annotations():
    cls = _class(_module_tree(), "AISAnnotationParameterNode")
    decos = [d.id if isinstance(d, ast.Name) else getattr(d, "attr", "") for d in cls.decorator_list]
    assert "parameterNodeWrapper" in decos
    return {s.target.id: s for s in cls.body if isinstance(s, ast.AnnAssign)}


def _param_kind(annotation):
    """'bool'/'int'/'float'/'str'/'pathlib.Path'/'Choice'/'node' for a parameter annotation."""
    src = ast.unparse(annotation)
    if src.startswith("Annotated["):
        base = ast.unparse(annotation.slice.elts[0])
        if "Choice(" in src:
            return "Choice"
        return base
    if src.startswith("Optional[vtkMRML") or src.startswith("vtkMRML"):
        return "node"
    return src


def _module_constants(tree):
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def test_parameter_node_annotations_are_valid_on_python39():
    params = _param_annotations()
    assert params
    consts = _module_constants(_module_tree())
    for name, stmt in params.items():
        for sub in ast.walk(stmt.annotation):
            assert not (isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.BitOr)), \
                f"{name}: 'X | Y' is evaluated at runtime by parameterNodeWrapper and fails on Python 3.9"
        kind = _param_kind(stmt.annotation)
        assert kind in {"bool", "int", "float", "str", "pathlib.Path", "Choice", "node"}, f"{name}: {kind}"
        if kind == "Choice":
            choice = next(c for c in ast.walk(stmt.annotation) if isinstance(c, ast.Call)
                          and getattr(c.func, "id", "") == "Choice")
            arg = choice.args[0]
            inner = arg.args[0] if isinstance(arg, ast.Call) else arg
            choices = consts[inner.id] if isinstance(inner, ast.Name) else ast.literal_eval(inner)
            assert ast.literal_eval(stmt.value) in choices, f"{name}: default not among its choices"


def test_every_connected_widget_matches_its_parameter_type():
    params = _param_annotations()
    ui = _ui_params(MODULE_UI)
    assert len(ui) >= 20
    for widget, (cls, param) in ui.items():
        assert param in params, f"{widget} is bound to unknown parameter {param!r}"
        kind = _param_kind(params[param].annotation)
        assert kind in CONNECTABLE[cls], f"{widget} ({cls}) cannot represent {param} of kind {kind}"


_ARRAY_CALLS = re.compile(r"^(arrayFrom\w*|updateVolumeFromArray|updateSegmentBinaryLabelmapFromArray|"
                          r"updateTableFromArray|array)$")
_WRITE_CALLS = {"write", "write_text", "write_bytes", "writelines", "dump", "dumps", "saveNode", "saveScene",
                "mkdir", "makedirs", "rename", "replace", "unlink", "remove", "rmtree", "copy", "copyfile",
                "write_nifti", "write_json", "write_mask", "atomic_write_text", "atomic_write_bytes", "WriteImage"}


@pytest.mark.parametrize("cls_name", ["AISAnnotationWidget", "AISAnnotationLogic"])
def test_widget_and_logic_hold_no_array_arithmetic_and_no_file_writing(cls_name):
    tree = _module_tree()
    cls = _class(tree, cls_name)
    for node in ast.walk(cls):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            for m in mods:
                assert m and m.split(".")[0] not in {"numpy", "SimpleITK", "nibabel", "shutil", "json"}, \
                    f"{cls_name} imports {m} (line {node.lineno})"
        if isinstance(node, ast.Name):
            assert node.id not in {"np", "numpy", "sitk"}, f"{cls_name} uses {node.id} (line {node.lineno})"
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            assert not _ARRAY_CALLS.match(name), f"{cls_name} calls {name} (line {node.lineno})"
            assert name not in _WRITE_CALLS, f"{cls_name} writes files: {name} (line {node.lineno})"
            if name == "open":
                modes = [a for a in node.args[1:2]] + [k.value for k in node.keywords if k.arg == "mode"]
                assert not modes or all(isinstance(m, ast.Constant) and set(m.value) <= {"r", "b", "t"}
                                        for m in modes), f"{cls_name} opens a file for writing (line {node.lineno})"
    module_imports = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    module_imports += [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
    assert not {"numpy", "SimpleITK", "nibabel"} & {m.split(".")[0] for m in module_imports}, \
        "heavy/pure dependencies are imported lazily through the bridge, never at module import"


def test_widget_has_no_decision_logic():
    """The decision verbs are forwarded to the Logic unchanged; the widget never picks masks itself."""
    cls = _class(_module_tree(), "AISAnnotationWidget")
    src = ast.unparse(cls)
    for word in ("logical_or", "logical_and", "union(", "dice", "Dice(", "threshold <", "< 620", "<620"):
        assert word not in src, f"widget contains {word!r}"
    for fn in ast.walk(cls):
        if isinstance(fn, ast.FunctionDef) and fn.name == "onDecision":
            calls = [ast.unparse(c.func) for c in ast.walk(fn) if isinstance(c, ast.Call)]
            assert "self.logic.decide" in calls


def test_every_handler_runs_inside_try_with_error_display():
    """Actions that can fail on input show the error (file and cause) instead of swallowing it."""
    cls = _class(_module_tree(), "AISAnnotationWidget")
    for fn in cls.body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name.startswith("on")) or fn.name.startswith("onScene"):
            continue
        logic_calls = [c for c in ast.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                       and ast.unparse(c.func).startswith("self.logic.")
                       and c.func.attr not in {"jumpTo", "notes", "crosshairRas"}]
        if not logic_calls:
            continue
        withs = [w for w in ast.walk(fn) if isinstance(w, ast.With)
                 and any("tryWithErrorDisplay" in ast.unparse(i.context_expr) for i in w.items)]
        assert withs, f"{fn.name} calls the logic outside slicer.util.tryWithErrorDisplay"
        for t in ast.walk(fn):
            assert not isinstance(t, ast.Try), f"{fn.name} has its own try: errors must reach the dialog"


def test_dependencies_installed_lazily_with_consent():
    tree = _module_tree()
    logic = _class(tree, "AISAnnotationLogic")
    ensure = next(f for f in logic.body if isinstance(f, ast.FunctionDef) and f.name == "ensureDependencies")
    src = ast.unparse(ensure)
    assert "confirmOkCancelDisplay" in src and "pip_install" in src
    # nothing installs at import time
    for node in tree.body:
        assert "pip_install" not in ast.unparse(node) or isinstance(node, ast.ClassDef)


def test_module_metadata():
    src = MODULE_PY.read_text()
    init = next(f for f in _class(_module_tree(), "AISAnnotation").body if isinstance(f, ast.FunctionDef))
    assigned = {ast.unparse(t) for s in ast.walk(init) if isinstance(s, ast.Assign) for t in s.targets}
    for attr in ("title", "categories", "contributors", "helpText", "acknowledgementText", "dependencies"):
        assert f"self.parent.{attr}" in assigned
    assert "consensus" in src and "620" in src
    assert (MODULE_DIR / "Resources" / "Icons" / "AISAnnotation.png").stat().st_size > 500


def test_self_test_exercises_the_whole_workflow():
    tree = _module_tree()
    test = _class(tree, "AISAnnotationTest")
    names = {f.name for f in test.body if isinstance(f, ast.FunctionDef)}
    assert {"runTest", "test_DemoCaseLoads", "test_AnnotatorPanel", "test_TwoRatersReviewFinal"} <= names
    src = ast.unparse(test)
    for needle in ("setActiveEffectByName", "activeEffect()", "logic.submit", "logic.decide", "final_result",
                   "assertEqual(result['state'], 'final')", "assertGreater(dice"):
        assert needle in src, needle
    run = next(f for f in test.body if isinstance(f, ast.FunctionDef) and f.name == "runTest")
    called = {ast.unparse(c.func) for c in ast.walk(run) if isinstance(c, ast.Call)}
    assert {"self.test_DemoCaseLoads", "self.test_AnnotatorPanel", "self.test_TwoRatersReviewFinal"} <= called


def test_widget_choices_equal_the_library_tables():
    """The combo-box choices are constants of the module file (nothing heavy imported at Slicer start-up);
    they must stay equal to the tables the library checks against."""
    from AISAnnotationLib import panels, raters

    consts = _module_constants(_module_tree())
    assert tuple(consts["ROLES"]) == tuple(raters.READING_ROLES)
    assert tuple(consts["QUEUE_FILTERS"]) == tuple(panels.QUEUE_FILTERS)
    pytest.importorskip("slicer", reason="slicer-core is not installed")
    from AISAnnotationMRML import workspace

    assert tuple(consts["NOTE_DECISIONS"]) == tuple(workspace.NOTE_DECISIONS)
    assert tuple(consts["DECISIONS"]) == tuple(workspace.DECISION_MAP)
    assert tuple(consts["RETURN_SIDES"]) == tuple(workspace.RETURN_SIDES)
    screening_keys = ast.literal_eval(next(
        s.value for s in _class(_module_tree(), "AISAnnotationWidget").body
        if isinstance(s, ast.Assign) and s.targets[0].id == "_SCREENING_FIELDS"))
    form_keys = {f"likert.{s}" for s in workspace.FORM_LIKERT} | {f"artifact.{a}" for a in workspace.FORM_ARTIFACTS}
    form_keys |= {f"exclusion.{e}" for e in workspace.FORM_EXCLUSIONS} | {"note", "no_visible_lesion"}
    assert set(screening_keys) == form_keys
    params = _param_annotations()
    assert set(screening_keys.values()) <= set(params)


def test_logic_calls_only_existing_workspace_functions():
    pytest.importorskip("slicer", reason="slicer-core is not installed")
    from AISAnnotationMRML import workspace

    logic = _class(_module_tree(), "AISAnnotationLogic")
    used = set()
    for node in ast.walk(logic):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Call)
                and ast.unparse(node.value.func) == "self._ws"):
            used.add(node.attr)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ws":
            used.add(node.attr)
    assert len(used) >= 15
    missing = sorted(n for n in used if not hasattr(workspace, n))
    assert not missing, f"AISAnnotationMRML.workspace lacks {missing}"
    test = _class(_module_tree(), "AISAnnotationTest")
    used_t = {n.attr for n in ast.walk(test) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
              and n.value.id == "workspace"}
    missing = sorted(n for n in used_t if not hasattr(workspace, n))
    assert not missing, f"the self-test calls missing workspace functions {missing}"


def test_module_folder_compiles_with_a_real_python39():
    """Slicer 5.8 ships Python 3.9: byte-compile every module file with a 3.9 interpreter when one exists."""
    import shutil
    import subprocess
    from pathlib import Path

    candidates = [shutil.which("python3.9")] + sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.9*/bin/python3.9"))
    exe = next((c for c in candidates if c and subprocess.run([c, "--version"], capture_output=True).returncode == 0),
               None)
    if exe is None:
        pytest.skip("no working python3.9 interpreter")
    files = [str(p) for p in _py_files(MODULE_DIR)]
    code = ("import sys\n"
            "for f in sys.argv[1:]:\n"
            "    compile(open(f, encoding='utf-8').read(), f, 'exec')\n")
    proc = subprocess.run([exe, "-c", code, *files], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_connected_handler_exists():
    cls = _class(_module_tree(), "AISAnnotationWidget")
    methods = {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}
    handlers = []
    for node in ast.walk(cls):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect":
            target = node.args[1]
            if isinstance(target, ast.Lambda):
                target = target.body.func
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
                handlers.append(target.attr)
    assert len(handlers) >= 20
    assert set(handlers) <= methods, sorted(set(handlers) - methods)
