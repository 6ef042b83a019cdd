"""Check the Slicer-facing code against Slicer's and CTK's API surface (Testing/data/slicer_api/slicer_api.json).

The module cannot run here (no Slicer application), so this reads its source: every attribute
chain rooted at ``slicer``, ``ctk``, ``qt``, ``vtk`` (and names imported from them), every
``connect("signal(...)")`` string, every custom widget class / property / connection of the
``.ui``, the effect's overridden hooks and the parameter-node field types. Each name is looked
up in the table (names read from Slicer/CTK sources, with repository and commit) and, where the
installed ``slicer-core`` has it, in the live package. A finding is ``(kind, name, where, why)``.
"""

from __future__ import annotations

import ast
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

TABLE_PATH = Path(__file__).parent / "data" / "slicer_api" / "slicer_api.json"
ROOTS = ("slicer", "ctk", "qt", "vtk")
VERSIONS = ("5.8", "current")


def load_table() -> dict[str, Any]:
    return json.loads(TABLE_PATH.read_text(encoding="utf-8"))


@dataclass
class Report:
    """What was checked: verified names per (category, version), unverified and missing ones."""

    checked: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    unverified: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    pre_58: dict[str, set[str]] = field(default_factory=dict)  # category → names read in a pre-5.8 source

    def ok(self, category: str, name: str, versions: list[str]) -> None:
        if "current" in versions and name in self.pre_58.get(category, ()):
            versions = [*versions, "5.8"]  # the table's bracket rule: before 5.8 and still current
        for v in VERSIONS:
            if v in versions:
                self.checked.setdefault((category, v), set()).add(name)
            else:
                self.unverified.add(f"{category}: {name} ({v})")

    def bad(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def counts(self) -> dict[str, int]:
        return {f"{c} @ {v}": len(n) for (c, v), n in sorted(self.checked.items())}


# -- reading the Python sources -----------------------------------------------------------------


def _dotted(node: ast.AST) -> Optional[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name → full dotted name for ``from slicer… import X`` (and SegmentEditorEffects)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in ROOTS + ("SegmentEditorEffects",):
                for a in node.names:
                    if a.name != "*":
                        out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def attribute_chains(source: str) -> list[tuple[str, int]]:
    """Every outermost attribute chain rooted at slicer/ctk/qt/vtk (imports resolved), with its line."""
    tree = ast.parse(source)
    aliases = imported_names(tree)
    parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    out = list((full, 0) for full in aliases.values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(parents.get(id(node)), ast.Attribute):
            chain = _dotted(node)
            if chain is None:
                continue
            root, _, rest = chain.partition(".")
            if root in ROOTS:
                out.append((chain, node.lineno))
            elif root in aliases:
                out.append((aliases[root] + "." + rest, node.lineno))
    return out


def _assigned_classes(tree: ast.AST) -> dict[str, str]:
    """``self.x = qt.QTimer()`` / ``s = ctk.ctkSliderWidget()``: target → class name."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            chain = _dotted(node.value.func) or ""
            if chain.split(".")[0] in ROOTS:
                for t in node.targets:
                    name = _dotted(t)
                    if name:
                        out[name] = chain.split(".")[-1]
    return out


def connect_calls(source: str, ui_classes: dict[str, str]) -> list[tuple[str, str, int]]:
    """``X.connect("signal(args)", …)``: (class of X, signal, line); class '?' when unknown."""
    tree = ast.parse(source)
    assigned = _assigned_classes(tree)
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            recv = _dotted(node.func.value) or "?"
            if recv.startswith("self.ui."):
                cls = ui_classes.get(recv.split(".")[2], "?")
            elif recv == "slicer.app":
                cls = "qSlicerApplication"
            else:
                cls = assigned.get(recv, "?")
            out.append((cls, node.args[0].value.replace(" ", ""), node.lineno))
    return out


# -- reading the .ui ------------------------------------------------------------------------------


def ui_facts(ui_text: str) -> dict[str, Any]:
    root = ET.fromstring(ui_text)
    widgets = {w.get("name"): w.get("class") for w in root.iter("widget")}
    props = [(w.get("class"), p.get("name"), w.get("name")) for w in root.iter("widget") for p in w.findall("property")]
    custom = {c.findtext("class"): c.findtext("extends") for c in root.iter("customwidget")}
    conns = [(c.findtext("sender"), c.findtext("signal"), c.findtext("receiver"), c.findtext("slot"))
             for c in root.iter("connection")]
    return {"widgets": widgets, "properties": props, "custom": custom, "connections": conns}


# -- the checks -----------------------------------------------------------------------------------


def _versions(table: dict[str, Any], source: str) -> list[str]:
    return list(table["sources"].get(source, {}).get("versions", []))


def _qt_class(table: dict[str, Any], name: str) -> Optional[dict[str, Any]]:
    return table["qt"]["classes"].get(name)


def _widget_members(table: dict[str, Any], cls: str, kind: str) -> Optional[dict[str, list[str]]]:
    """``kind`` (properties / signals / slots) of a widget class and its bases → the versions its source covers.

    None when the class itself is not in the table.
    """
    out: dict[str, list[str]] = {}
    c: Optional[str] = cls
    for _ in range(10):
        w = table["widgets"].get(c) if c else None
        q = _qt_class(table, c) if c else None
        entry = w or q
        if entry is None:
            return None if c == cls else out
        for part in [entry, *entry.get("also", [])]:  # "also": the same class read in another source
            versions = _versions(table, part.get("source", "qt5"))
            for m in part.get(kind, []):
                have = out.setdefault(m.replace(" ", ""), [])
                have.extend(v for v in versions if v not in have)
        if kind == "properties":
            for m in entry.get("properties_unread", []):
                out.setdefault(m, [])
        c = entry.get("inherits")
        if not c:
            break
    return out


def _live(chain: str) -> Optional[bool]:
    """Whether the installed slicer-core / vtk has ``chain`` (None when not importable or not theirs)."""
    try:
        import slicer
        import vtk
    except ImportError:
        return None
    obj: Any = {"slicer": slicer, "vtk": vtk}.get(chain.split(".")[0])
    parts = chain.split(".")[1:]
    if obj is None or not parts:
        return None
    if chain.startswith("slicer.mrmlScene"):
        obj, parts = slicer.vtkMRMLScene, parts[1:]
    elif chain.split(".")[0] == "slicer" and not parts[0].startswith("vtk"):
        return None  # app, util, modules, qMRML…: not in slicer-core's MRML wrappers
    for p in parts:
        if not hasattr(obj, p):
            return False
        obj = getattr(obj, p)
    return True


def check_chain(table: dict[str, Any], chain: str, where: str, rep: Report) -> None:
    parts = chain.split(".")
    root = parts[0]
    if root == "SegmentEditorEffects":
        if len(parts) > 1 and parts[1] == "AbstractScriptedSegmentEditorEffect" and (
                len(parts) == 2 or parts[2] in table["AbstractScriptedSegmentEditorEffect"]["methods"]):
            rep.ok("effect base class", ".".join(parts[1:3]), _versions(table, "abstract_effect_py"))
        else:
            rep.bad(where, f"{chain}: not a SegmentEditorEffects base class")
        return
    if len(parts) < 2:
        return
    head = parts[1]
    if root == "slicer" and head == "util" and len(parts) > 2:
        if parts[2] in table["slicer.util"]["names"]:
            rep.ok("slicer.util", parts[2], _versions(table, "slicer-core"))
        else:
            rep.bad(where, f"{chain}: slicer.util has no {parts[2]!r}")
        return
    if root == "slicer" and head == "ScriptedLoadableModule" and len(parts) > 2:
        if parts[2] in table["slicer.ScriptedLoadableModule"]["classes"]:
            rep.ok("slicer.ScriptedLoadableModule", parts[2], _versions(table, "slm"))
        else:
            rep.bad(where, f"{chain}: slicer.ScriptedLoadableModule has no {parts[2]!r}")
        return
    if root == "slicer" and head == "parameterNodeWrapper" and len(parts) > 2:
        if parts[2] in table["slicer.parameterNodeWrapper"]["exports"]:
            rep.ok("slicer.parameterNodeWrapper", parts[2], _versions(table, "pnw_validators"))
        else:
            rep.bad(where, f"{chain}: slicer.parameterNodeWrapper has no {parts[2]!r}")
        return
    if root == "slicer" and head == "app":
        app = table["slicer.app"]
        if len(parts) == 2 or parts[2] in app["methods"]:
            rep.ok("slicer.app", ".".join(parts[1:3]), _versions(table, app["source"]))
        else:
            rep.bad(where, f"{chain}: qSlicerApplication has no {parts[2]!r} in the table")
        return
    if root == "slicer" and head == "qSlicerSegmentEditorAbstractEffect":
        enums = {v for vs in table["scriptedEffect"]["enums"].values() for v in vs}
        if len(parts) == 2 or parts[2] in enums or parts[2] in table["scriptedEffect"]["methods"]:
            rep.ok("qSlicerSegmentEditorAbstractEffect", ".".join(parts[1:3]), _versions(table, "abstract_effect_h"))
        else:
            rep.bad(where, f"{chain}: qSlicerSegmentEditorAbstractEffect has no {parts[2]!r}")
        return
    if root == "slicer" and head == "modules":
        rep.bad(where, f"{chain}: slicer.modules.* is not in the table (add the module's name with its source)")
        return
    if root in ("slicer", "ctk") and head.startswith(("qMRML", "qSlicer", "ctk")):
        if head in table["widgets"]:
            rep.ok("widget class", head, _versions(table, table["widgets"][head]["source"]))
        else:
            rep.bad(where, f"{chain}: no widget class {head!r} in Slicer/CTK")
        return
    if root == "qt":
        cls = _qt_class(table, head)
        if cls is None:
            rep.bad(where, f"{chain}: qt.{head} is not a Qt class in the table")
        elif len(parts) > 2 and cls.get("static") is not None and parts[2] not in cls["static"]:
            rep.bad(where, f"{chain}: qt.{head} has no {parts[2]!r} in the table")
        else:
            rep.ok("qt", ".".join(parts[1:3]), _versions(table, "qt5"))
        return
    live = _live(chain)
    if live is False:
        rep.bad(where, f"{chain}: not in the installed slicer-core / vtk")
    elif live is True:
        rep.ok("MRML/VTK (live slicer-core 5.11.0.6, vtk 9.6.0)", chain, ["current"])
    elif root == "slicer" and head.startswith("vtkMRML"):
        rep.bad(where, f"{chain}: slicer-core not importable, MRML name not checked")


def check_hooks(table: dict[str, Any], source: str, where: str, rep: Report) -> None:
    """Each method of an effect class named like a hook takes the hook's arguments."""
    hooks = table["effect_hooks"]["hooks"]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and any("Effect" in (_dotted(b) or "") for b in node.bases):
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name in hooks:
                    got = [a.arg for a in fn.args.args[1:]]
                    want = hooks[fn.name]
                    if len(got) != len(want):
                        rep.bad(f"{where}:{fn.lineno}", f"hook {fn.name}({', '.join(got)}) should take "
                                                        f"({', '.join(want)})")
                    else:
                        rep.ok("effect hook", fn.name, _versions(table, "scripted_effect"))


def _type_names(ann: ast.AST) -> list[str]:
    """Base type(s) of a field annotation, Annotated[...] and Optional[...] unwrapped; validators separately."""
    if isinstance(ann, ast.Subscript) and (_dotted(ann.value) or "").split(".")[-1] == "Annotated":
        elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        return _type_names(elts[0]) + ["validator:" + ((_dotted(e.func) if isinstance(e, ast.Call) else _dotted(e))
                                                       or "?") for e in elts[1:]]
    if isinstance(ann, ast.Subscript):
        head = (_dotted(ann.value) or "?").split(".")[-1]
        elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
        return [head.lower() if head in ("List", "Tuple", "Dict") else head] + [t for e in elts for t in _type_names(e)]
    return [_dotted(ann) or "?"]


def check_parameter_node(table: dict[str, Any], source: str, where: str, rep: Report) -> None:
    pnw = table["slicer.parameterNodeWrapper"]
    types = set(pnw["serializable_types"]) | {"Optional", "Union"}
    versions = _versions(table, "pnw_serializers")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and any((_dotted(d) or "").endswith("parameterNodeWrapper")
                                                  for d in node.decorator_list):
            for st in node.body:
                if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
                    for t in _type_names(st.annotation):
                        if t.startswith("validator:"):
                            ok = t.split(":", 1)[1].split(".")[-1] in pnw["validators"]
                        else:
                            ok = t in types or (t.startswith("vtkMRML") and t.endswith("Node")) or t == "None"
                        if ok:
                            rep.ok("parameter-node field type", f"{st.target.id}: {t}", versions)
                        else:
                            rep.bad(f"{where}:{st.lineno}", f"parameter {st.target.id}: {t} is not a type "
                                                            "parameterNodeWrapper serialises (or a validator it has)")


def check_ui(table: dict[str, Any], ui_text: str, where: str, rep: Report) -> dict[str, str]:
    facts = ui_facts(ui_text)
    dynamic = {"SlicerParameterName"}  # a dynamic property read by parameterNodeWrapper's GUI connectors
    for cls in facts["custom"]:
        if cls in table["widgets"]:
            rep.ok("widget class", cls, _versions(table, table["widgets"][cls]["source"]))
        else:
            rep.bad(where, f"custom widget class {cls!r} is not a Slicer/CTK widget in the table")
    for cls, prop, name in facts["properties"]:
        if cls not in table["widgets"] or prop in dynamic:
            continue
        members = _widget_members(table, cls, "properties") or {}
        if prop not in members:
            rep.bad(where, f"{name} ({cls}): no property {prop!r}")
        else:
            rep.ok("widget property", f"{cls}.{prop}", members[prop])
    for sender, signal, receiver, slot in facts["connections"]:
        for who, member, kind in ((sender, signal, "signals"), (receiver, slot, "slots")):
            cls = facts["widgets"].get(who, "?")
            members = _widget_members(table, cls, kind) or {}
            if member.replace(" ", "") not in members:
                rep.bad(where, f"connection: {who} ({cls}) has no {kind[:-1]} {member!r}")
            else:
                rep.ok(f"widget {kind[:-1]}", f"{cls}.{member}", members[member.replace(" ", "")])
    return facts["widgets"]


def check_connects(table: dict[str, Any], source: str, ui_widgets: dict[str, str], where: str, rep: Report) -> None:
    for cls, signal, line in connect_calls(source, ui_widgets):
        if cls == "qSlicerApplication":
            ok = signal in table["slicer.app"]["signals"]
            versions = _versions(table, table["slicer.app"]["source"])
        else:
            members = _widget_members(table, cls, "signals") or {}
            ok, versions = signal in members, members.get(signal, [])
        if ok:
            rep.ok("connect() signal", f"{cls}.{signal}", versions)
        else:
            rep.bad(f"{where}:{line}", f"connect({signal!r}) on {cls}: no such signal in the table")


def check_module(table: dict[str, Any], py_files: list[Path], ui_file: Optional[Path], rep: Report) -> Report:
    for category, entry in table.get("pre_5.8", {}).get("categories", {}).items():
        rep.pre_58.setdefault(category, set()).update(entry["names"])
    ui_widgets = check_ui(table, ui_file.read_text(encoding="utf-8"), ui_file.name, rep) if ui_file else {}
    for p in py_files:
        src = p.read_text(encoding="utf-8")
        for chain, line in attribute_chains(src):
            check_chain(table, chain, f"{p.name}:{line}", rep)
        check_connects(table, src, ui_widgets, p.name, rep)
        check_hooks(table, src, p.name, rep)
        check_parameter_node(table, src, p.name, rep)
    return rep
