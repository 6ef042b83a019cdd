"""AISAnnotation: Slicer module for acute ischemic stroke MRI annotation.

Module, Widget, thin Logic and the Slicer self-test. Every behaviour lives in
AISAnnotationLib (pure Python) or AISAnnotationMRML (scene passed in); the widget
only wires signals to the Logic, and the Logic makes one bridge call per action
(``AISAnnotationMRML.workspace``). The widget holds no decision logic, does no
arithmetic on image arrays and writes no file (a static test enforces it).
"""

from __future__ import annotations

import logging
import os
import pathlib
import tempfile
from typing import Annotated, Any, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# Choices shown in the combo boxes. They are plain constants (no library import at
# module import time: nibabel may not be installed yet); the workspace bridge checks
# them against the library's own tables.
ROLES = ("annotator", "reviewer", "arbitrator")
DATASET_SOURCES = ("Local folder", "Server")
QUEUE_FILTERS = ("waiting for me", "all cases", "annotating", "needs review", "escalated", "final", "excluded")
NOTE_DECISIONS = ("included", "excluded", "for-review")
DECISIONS = ("accept_a", "accept_b", "union", "intersection", "edited", "sign_off")
RETURN_SIDES = ("A", "B", "A and B")  # "Return for re-annotation" to annotator A, B or both

# Python packages that Slicer does not bundle, installed on first use with consent.
REQUIREMENTS = {"nibabel": "nibabel>=4.0"}
# the report's naming check runs the official BIDS validator (a Python package with its own script)
REPORT_REQUIREMENTS = {"matplotlib": "matplotlib>=3.5", "bids_validator_deno": "bids-validator-deno>=3.0.2"}
# the self-test's own annotation server (the [server] extra), run by PythonSlicer in a subprocess
SERVER_REQUIREMENTS = {"fastapi": "fastapi>=0.110", "starlette": "starlette>=0.36", "uvicorn": "uvicorn>=0.29",
                       "argon2": "argon2-cffi>=23.1"}


#
# AISAnnotation
#


class AISAnnotation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "AIS Annotation"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["Segmentations", "SegmentEditor"]
        self.parent.contributors = ["AISAnnotation developers"]
        self.parent.helpText = (
            "Annotation of acute ischemic stroke (AIS) lesions on brain MRI as prescribed by the Chinese expert "
            "consensus on MRI annotation of acute ischemic stroke (Chinese Medical Doctor Association, radiology "
            "branch, emergency imaging committee, 2025):<ul>"
            "<li><b>Annotator</b>: screen the case (Likert 1-5 per sequence, artifacts, non-ischemic exclusions), "
            "draw on DWI b1000 with ADC, eADC and FLAIR linked; start from ADC &lt; 620×10⁻⁶ mm²/s and refine "
            "on DWI (threshold-then-refine effect); note doubtful regions (prudence principle); submit (mask QC "
            "runs first).</li>"
            "<li><b>Reviewer</b>: both blinded annotations side by side with the disagreement map and the "
            "ISLES'22 agreement metrics; accept A, accept B, union, intersection, or edit then accept; escalate "
            "disputed cases with a reason.</li>"
            "<li><b>Arbitrator</b>: final decision on escalated cases.</li></ul>"
            "Masks are stored as binary NIfTI on the DWI grid in a BIDS derivatives folder with full provenance. "
            "The extension's README.md explains every step, from DICOM to an accepted dataset."
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer and its Segment Editor. Follows the expert consensus on MRI annotation of acute "
            "ischemic stroke (Chinese Medical Doctor Association, radiology branch, emergency imaging committee, "
            "2025). Agreement metrics follow the ISLES'22 challenge evaluation."
        )
        slicer.app.connect("startupCompleted()", registerAISLayouts)


def registerAISLayouts() -> None:
    """Add the AIS layouts (2x2, row, 3-plane, review, ...) to Slicer's layout node once at start-up."""
    if slicer.app.layoutManager() is None:  # no GUI (e.g. --no-main-window)
        return
    from AISAnnotationMRML.layouts import register_layouts

    register_layouts(slicer.app.layoutManager().layoutLogic().GetLayoutNode())


#
# Parameter node (Python 3.9: no ``X | Y`` in these annotations, they are evaluated at runtime)
#


@parameterNodeWrapper
class AISAnnotationParameterNode:
    """State that survives scene save/restore.

    datasetSource - "Local folder" (bidsRoot, one person) or "Server" (serverUrl, serverUser, serverCaFile;
        the password is never stored and the identity comes from the login).
    bidsRoot - dataset root (raw BIDS; masks go to derivatives/lesions).
    raterId, role - who is working (the library checks the role, not only the GUI).
    caseId - the open case (sub-X_ses-Y).
    likert*, artifact*, exclude*, screeningNote, noVisibleLesion - the screening form of the open case.
    adcThreshold - pre-annotation ADC threshold, ×10⁻⁶ mm²/s.
    decisionReason, returnTo - the reviewer's reason and whom "Return for re-annotation" sends the case to.
    segmentationNode, dwiNode - the open case's annotation and its reference grid.
    """

    datasetSource: Annotated[str, Choice(list(DATASET_SOURCES))] = "Local folder"
    bidsRoot: pathlib.Path
    serverUrl: str = ""
    serverUser: str = ""
    serverCaFile: pathlib.Path
    raterId: str = ""
    role: Annotated[str, Choice(list(ROLES))] = "annotator"
    queueFilter: Annotated[str, Choice(list(QUEUE_FILTERS))] = "waiting for me"
    caseSearch: str = ""
    caseId: str = ""
    likertDwi: Annotated[int, WithinRange(0, 5)] = 0
    likertAdc: Annotated[int, WithinRange(0, 5)] = 0
    likertEadc: Annotated[int, WithinRange(0, 5)] = 0
    likertFlair: Annotated[int, WithinRange(0, 5)] = 0
    likertT1w: Annotated[int, WithinRange(0, 5)] = 0
    likertT2w: Annotated[int, WithinRange(0, 5)] = 0
    artifactMotion: bool = False
    artifactSusceptibility: bool = False
    artifactDeformation: bool = False
    artifactInhomogeneity: bool = False
    excludeTumour: bool = False
    excludeVascularMalformation: bool = False
    excludeHaemorrhage: bool = False
    excludeOther: bool = False
    screeningNote: str = ""
    noVisibleLesion: bool = False
    adcThreshold: Annotated[float, WithinRange(200.0, 1200.0)] = 620.0
    noteDecision: Annotated[str, Choice(list(NOTE_DECISIONS))] = "for-review"
    noteText: str = ""
    noteComponent: bool = False
    decisionReason: str = ""
    returnTo: Annotated[str, Choice(list(RETURN_SIDES))] = "A"
    reportDir: pathlib.Path
    segmentationNode: Optional[vtkMRMLSegmentationNode] = None
    dwiNode: Optional[vtkMRMLScalarVolumeNode] = None


#
# AISAnnotationWidget
#


class AISAnnotationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Wires the panels to the Logic; no decisions, no array arithmetic, no file writing here."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._workspace = None  # the open case (AISAnnotationMRML.workspace.CaseWorkspace)
        self._server = None  # AISAnnotationLib.dataset.RemoteDataset after "Log in"
        self._queueRows: list[dict[str, Any]] = []
        self._candidates: list[dict[str, Any]] = []
        self._lesions: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ set-up

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/AISAnnotation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = AISAnnotationLogic()

        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.getSegmentEditorNode())

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.loadDemoButton.connect("clicked(bool)", self.onLoadDemo)
        self.ui.serverLoginButton.connect("clicked(bool)", self.onServerLogin)
        self.ui.refreshQueueButton.connect("clicked(bool)", self.onRefreshQueue)
        self.ui.caseQueueTableWidget.connect("itemSelectionChanged()", self.onQueueSelectionChanged)
        self.ui.caseQueueTableWidget.connect("cellDoubleClicked(int,int)", self.onOpenCase)
        self.ui.openCaseButton.connect("clicked(bool)", self.onOpenCase)
        self.ui.saveScreeningButton.connect("clicked(bool)", self.onSaveScreening)
        self.ui.preannotateButton.connect("clicked(bool)", self.onPreannotate)
        self.ui.candidatesTableWidget.connect("cellClicked(int,int)", self.onCandidateClicked)
        self.ui.addNoteButton.connect("clicked(bool)", self.onAddNote)
        self.ui.removeNoteButton.connect("clicked(bool)", self.onRemoveNote)
        self.ui.notesTableWidget.connect("cellClicked(int,int)", self.onNoteClicked)
        self.ui.submitButton.connect("clicked(bool)", self.onSubmit)
        self.ui.lesionsTableWidget.connect("cellClicked(int,int)", self.onLesionClicked)
        self.ui.acceptAButton.connect("clicked(bool)", lambda: self.onDecision("accept_a"))
        self.ui.acceptBButton.connect("clicked(bool)", lambda: self.onDecision("accept_b"))
        self.ui.unionButton.connect("clicked(bool)", lambda: self.onDecision("union"))
        self.ui.intersectionButton.connect("clicked(bool)", lambda: self.onDecision("intersection"))
        self.ui.startEditButton.connect("clicked(bool)", self.onStartEdit)
        self.ui.acceptEditedButton.connect("clicked(bool)", lambda: self.onDecision("edited"))
        self.ui.signOffButton.connect("clicked(bool)", lambda: self.onDecision("sign_off"))
        self.ui.escalateButton.connect("clicked(bool)", self.onEscalate)
        self.ui.returnButton.connect("clicked(bool)", self.onReturnCase)
        self.ui.queueFilterComboBox.connect("currentIndexChanged(int)", self.onQueueFilterChanged)
        self.ui.caseSearchLineEdit.connect("editingFinished()", self.onQueueFilterChanged)
        self.ui.runQCButton.connect("clicked(bool)", self.onRunQC)
        self.ui.datasetStatusButton.connect("clicked(bool)", self.onDatasetStatus)
        self.ui.writeReportButton.connect("clicked(bool)", self.onWriteReport)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()
        self.ui.segmentEditorWidget.installKeyboardShortcuts()

    def exit(self) -> None:
        self.ui.segmentEditorWidget.setActiveEffect(None)
        self.ui.segmentEditorWidget.uninstallKeyboardShortcuts()
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)

    def onSceneStartClose(self, caller, event) -> None:
        self._workspace = None
        self.ui.segmentEditorWidget.setSegmentationNode(None)
        self.ui.segmentEditorWidget.removeViewObservations()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(self.logic.getSegmentEditorNode())
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode: Optional[AISAnnotationParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Widgets carrying the "SlicerParameterName" dynamic property in the .ui are connected.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateGui)
            self._updateGui()

    # ------------------------------------------------------------------ GUI state

    def _updateGui(self, caller=None, event=None) -> None:
        """Show the panels of the chosen role; enable what the open case allows."""
        p = self._parameterNode
        if not p:
            return
        role = p.role
        onServer = p.datasetSource == "Server"
        self.ui.serverGroupBox.visible = onServer
        for w in (self.ui.bidsRootLabel, self.ui.bidsRootPathLineEdit, self.ui.loadDemoButton):
            w.visible = not onServer
        self.ui.raterIdLineEdit.enabled = self.ui.roleComboBox.enabled = not onServer
        # a case opened under another rater id or role must be reopened (blinding and role checks)
        caseOpen = (self._workspace is not None and self._workspace.role == role
                    and self._workspace.rater_id == p.raterId)
        self.ui.annotatorCollapsibleButton.visible = role == "annotator"
        self.ui.reviewerCollapsibleButton.visible = role in ("reviewer", "arbitrator")
        self.ui.arbitratorCollapsibleButton.visible = role == "arbitrator"
        self.ui.decisionGroupBox.visible = role in ("reviewer", "arbitrator")
        self.ui.openCaseButton.enabled = bool(self._selectedCaseId()) and bool(p.raterId)
        for w in (self.ui.saveScreeningButton, self.ui.preannotateButton, self.ui.addNoteButton,
                  self.ui.removeNoteButton, self.ui.submitButton, self.ui.acceptAButton, self.ui.acceptBButton,
                  self.ui.unionButton, self.ui.intersectionButton, self.ui.startEditButton,
                  self.ui.acceptEditedButton, self.ui.signOffButton, self.ui.escalateButton, self.ui.returnButton):
            w.enabled = caseOpen

    def _selectedCaseId(self) -> str:
        rows = self.ui.caseQueueTableWidget.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._queueRows):
            return ""
        return self._queueRows[rows[0].row()]["case_id"]

    @staticmethod
    def _fillTable(table, rows: list[list[str]]) -> None:
        table.clearContents()
        table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                table.setItem(r, c, qt.QTableWidgetItem(text))
        table.resizeColumnsToContents()

    def _progress(self, fraction: float, message: str) -> None:
        """Progress callback handed to the Logic: shows it and keeps the GUI responsive."""
        self.ui.progressBar.visible = fraction < 1.0
        self.ui.progressBar.setValue(int(round(100 * fraction)))
        self.ui.progressBar.setFormat(f"%p% {message}")
        slicer.app.processEvents()

    def _requireCase(self):
        p = self._parameterNode
        if self._workspace is None or (self._workspace.role, self._workspace.rater_id) != (p.role, p.raterId):
            raise RuntimeError("Open a case first, as the rater and role now selected "
                               "(Dataset and identity → Open selected case).")
        return self._workspace

    # ------------------------------------------------------------------ dataset and identity

    def onLoadDemo(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to write the demo dataset.", waitCursor=True):
            outDir = os.path.join(slicer.app.temporaryPath, "AISAnnotationDemo")
            self._parameterNode.bidsRoot = pathlib.Path(self.logic.writeDemo(outDir, progress=self._progress))
            self.onRefreshQueue()

    def _dataset(self):
        """The open dataset: the folder path, or the server login (identity from its token)."""
        p = self._parameterNode
        if p.datasetSource != "Server":
            return str(p.bidsRoot)
        if self._server is None:
            raise RuntimeError("Log in to the server first (Dataset and identity → Server → Log in).")
        return self._server

    def onServerLogin(self) -> None:
        p = self._parameterNode
        self._server = None
        with slicer.util.tryWithErrorDisplay(f"Failed to log in to {p.serverUrl}.", waitCursor=True):
            caFile = str(p.serverCaFile) if str(p.serverCaFile) not in ("", ".") else None
            self._server = self.logic.connectServer(p.serverUrl, p.serverUser, self.ui.serverPasswordLineEdit.text,
                                                    caFile)
            p.raterId = self._server.user
            if self._server.role in ROLES:  # a data manager reads no cases: the Data manager panel only
                p.role = self._server.role
            self.ui.serverStatusLabel.text = f"Logged in as {self._server.user} ({self._server.role})."
            if self._server.role in ROLES:
                self.onRefreshQueue()
        self.ui.serverPasswordLineEdit.text = ""

    def onRefreshQueue(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(f"Failed to list the cases of {p.bidsRoot}.", waitCursor=True):
            self._queueRows = self.logic.caseQueue(self._dataset(), p.raterId, p.role, p.queueFilter, p.caseSearch)
            self._fillTable(self.ui.caseQueueTableWidget, [
                [row["case_id"], row["state"], row["submitted"], row["waiting_for"]] for row in self._queueRows])
            self._updateGui()

    def onQueueFilterChanged(self, *args) -> None:
        # deferred: the parameter node receives the new filter from its own connection to the same signal
        p = self._parameterNode
        if p and ((p.datasetSource == "Server" and self._server) or (p.bidsRoot / "dataset_description.json").is_file()):
            qt.QTimer.singleShot(0, self.onRefreshQueue)

    def onQueueSelectionChanged(self) -> None:
        self._updateGui()

    def onOpenCase(self, *args) -> None:
        p = self._parameterNode
        caseId = self._selectedCaseId()
        self._workspace = None  # opening replaces the scene content of the previous case
        self.ui.segmentEditorWidget.setSegmentationNode(None)
        with slicer.util.tryWithErrorDisplay(f"Failed to open case {caseId} of {p.bidsRoot}.", waitCursor=True):
            self._workspace = self.logic.openCase(slicer.mrmlScene, self._dataset(), caseId, p.raterId, p.role,
                                                  progress=self._progress)
            ws = self._workspace
            p.caseId = caseId
            p.segmentationNode = ws.segmentation
            p.dwiNode = ws.volumes["dwi"]
            editor = self.ui.segmentEditorWidget
            editor.setSegmentationNode(ws.segmentation)
            editor.setSourceVolumeNode(ws.volumes["dwi"])
            editor.setCurrentSegmentID(ws.editable_segment_id)
            if p.role == "annotator":
                self.logic.prepareEffect(self.logic.getSegmentEditorNode(), ws, p.adcThreshold)
                editor.setActiveEffectByName(self.logic.effectName())
                self._showScreening(self.logic.screening(ws))
                self._showNotes()
            else:
                self._showAgreement()
                self.ui.escalationTextBrowser.setPlainText(self.logic.escalationText(ws))
            self._updateGui()

    # ------------------------------------------------------------------ annotator

    _SCREENING_FIELDS = {
        "likert.dwi": "likertDwi", "likert.adc": "likertAdc", "likert.eadc": "likertEadc",
        "likert.flair": "likertFlair", "likert.t1w": "likertT1w", "likert.t2w": "likertT2w",
        "artifact.motion": "artifactMotion", "artifact.susceptibility": "artifactSusceptibility",
        "artifact.deformation": "artifactDeformation", "artifact.inhomogeneity": "artifactInhomogeneity",
        "exclusion.tumour": "excludeTumour", "exclusion.vascular_malformation": "excludeVascularMalformation",
        "exclusion.haemorrhage": "excludeHaemorrhage", "exclusion.other": "excludeOther",
        "note": "screeningNote", "no_visible_lesion": "noVisibleLesion",
    }

    def _screeningForm(self) -> dict[str, Any]:
        return {key: getattr(self._parameterNode, name) for key, name in self._SCREENING_FIELDS.items()}

    def _showScreening(self, form: dict[str, Any]) -> None:
        with slicer.util.NodeModify(self._parameterNode):
            for key, name in self._SCREENING_FIELDS.items():
                if key in form:
                    setattr(self._parameterNode, name, form[key])

    def onSaveScreening(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to save the screening form.", waitCursor=True):
            verdict = self.logic.saveScreening(self._requireCase(), self._screeningForm())
            slicer.util.infoDisplay(verdict, windowTitle="Screening saved")

    def onPreannotate(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to compute the pre-annotation candidates.", waitCursor=True):
            self._candidates = self.logic.candidates(self._requireCase(), self._parameterNode.adcThreshold,
                                                     progress=self._progress)
            self._fillTable(self.ui.candidatesTableWidget, [
                [str(c["id"]), f"{c['volume_ml']:.2f}", ", ".join(f"{v:.1f}" for v in c["centroid_ras"]),
                 f"{c['mean_adc']:.0f}"] for c in self._candidates])

    def onCandidateClicked(self, row: int, column: int) -> None:
        if 0 <= row < len(self._candidates):
            self.logic.jumpTo(slicer.mrmlScene, self._candidates[row]["centroid_ras"])

    def _showNotes(self) -> None:
        notes = self.logic.notes(self._requireCase())
        self._fillTable(self.ui.notesTableWidget, [
            [str(i + 1), ", ".join(f"{v:.1f}" for v in n["position_ras"]), n["decision"], n["note"]]
            for i, n in enumerate(notes)])

    def onAddNote(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to add the note."):
            p = self._parameterNode
            self.logic.addNote(self._requireCase(), self.logic.crosshairRas(slicer.mrmlScene), p.noteText,
                               p.noteDecision, p.noteComponent)
            p.noteText = ""
            self._showNotes()

    def onRemoveNote(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to remove the note."):
            row = self.ui.notesTableWidget.currentRow()
            if row >= 0:
                self.logic.removeNote(self._requireCase(), row)
                self._showNotes()

    def onNoteClicked(self, row: int, column: int) -> None:
        notes = self.logic.notes(self._requireCase())
        if 0 <= row < len(notes):
            self.logic.jumpTo(slicer.mrmlScene, notes[row]["position_ras"])

    def onSubmit(self) -> None:
        with slicer.util.tryWithErrorDisplay("The annotation was not submitted.", waitCursor=True):
            message = self.logic.submit(self._requireCase(), self._screeningForm(), progress=self._progress)
            slicer.util.infoDisplay(message, windowTitle="Annotation submitted")
            self.onRefreshQueue()

    # ------------------------------------------------------------------ reviewer and arbitrator

    def _showAgreement(self) -> None:
        metrics, self._lesions = self.logic.agreement(self._requireCase())
        self._fillTable(self.ui.metricsTableWidget, [[m["label"], m["text"]] for m in metrics])
        self._fillTable(self.ui.lesionsTableWidget, [
            [str(les["id"]), les["match"], les["volume_a_text"], les["volume_b_text"],
             ", ".join(f"{v:.1f}" for v in les["centroid_ras"])] for les in self._lesions])

    def onLesionClicked(self, row: int, column: int) -> None:
        if 0 <= row < len(self._lesions):
            self.logic.jumpTo(slicer.mrmlScene, self._lesions[row]["centroid_ras"])

    def onStartEdit(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to create the editable copy."):
            segmentId = self.logic.startEdit(self._requireCase())
            self.ui.segmentEditorWidget.setCurrentSegmentID(segmentId)
            self.ui.editorCollapsibleButton.collapsed = False

    def onDecision(self, decision: str) -> None:
        with slicer.util.tryWithErrorDisplay(f"The decision '{decision}' was not recorded.", waitCursor=True):
            message = self.logic.decide(self._requireCase(), decision, self._parameterNode.decisionReason,
                                        progress=self._progress)
            slicer.util.infoDisplay(message, windowTitle="Decision recorded")
            self.onRefreshQueue()

    def onEscalate(self) -> None:
        with slicer.util.tryWithErrorDisplay("The case was not escalated.", waitCursor=True):
            message = self.logic.escalate(self._requireCase(), self._parameterNode.decisionReason)
            slicer.util.infoDisplay(message, windowTitle="Escalated to arbitration")
            self.onRefreshQueue()

    def onReturnCase(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("The case was not returned.", waitCursor=True):
            message = self.logic.returnCase(self._requireCase(), p.returnTo, p.decisionReason)
            slicer.util.infoDisplay(message, windowTitle="Returned for re-annotation")
            self.onRefreshQueue()

    # ------------------------------------------------------------------ data manager

    def onDatasetStatus(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Failed to read the dataset status.", waitCursor=True):
            self.ui.datasetStatusLabel.text = self.logic.datasetStatus(self._dataset(), p.raterId, p.role)

    def onRunQC(self) -> None:
        with slicer.util.tryWithErrorDisplay(f"Image QC of {self._parameterNode.bidsRoot} failed.", waitCursor=True):
            message = self.logic.datasetQC(self._dataset(), progress=self._progress)
            slicer.util.infoDisplay(message, windowTitle="Image QC")
            self.onRefreshQueue()

    def onWriteReport(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(f"The acceptance report was not written to {p.reportDir}.",
                                             waitCursor=True):
            result = self.logic.acceptanceReport(self._dataset(), str(p.reportDir), progress=self._progress)
            verdict = "PASSED" if result["passed"] else "FAILED"
            self.ui.reportStatusLabel.text = f"Acceptance {verdict}: " + "; ".join(result["reasons"])
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(result["html"]))


#
# AISAnnotationLogic
#


class AISAnnotationLogic(ScriptedLoadableModuleLogic):
    """Thin logic: one call into AISAnnotationMRML.workspace per action, scene passed in.

    Usable without the widget (the self-test drives it). ``progress`` callbacks receive
    (fraction in [0, 1], message).
    """

    SEGMENT_EDITOR_TAG = "AISAnnotationSegmentEditor"

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return AISAnnotationParameterNode(super().getParameterNode())

    def getSegmentEditorNode(self):
        """The module's own segment editor parameter node (a scene singleton)."""
        node = slicer.mrmlScene.GetSingletonNode(self.SEGMENT_EDITOR_TAG, "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLSegmentEditorNode")
            node.UnRegister(None)
            node.SetSingletonTag(self.SEGMENT_EDITOR_TAG)
            node = slicer.mrmlScene.AddNode(node)
        return node

    # -- dependencies

    @staticmethod
    def ensureDependencies(requirements: Optional[dict[str, str]] = None) -> None:
        """Install packages Slicer does not bundle on first use, after asking the user.

        Under ``--testing`` (ctest, no user to ask) they are installed without the question.
        """
        import importlib.util

        requirements = REQUIREMENTS if requirements is None else requirements
        missing = [spec for module, spec in requirements.items() if importlib.util.find_spec(module) is None]
        if not missing:
            return
        if slicer.app.testingEnabled() or slicer.util.confirmOkCancelDisplay(
            "AIS Annotation needs these Python packages, which Slicer does not include: "
            + ", ".join(missing) + ".\n\nInstall them now (from the Python Package Index)?",
            windowTitle="Install Python packages",
        ):
            slicer.util.pip_install(missing)
        else:
            raise RuntimeError("Not installed: " + ", ".join(missing) + ". This action of AIS Annotation needs them.")

    @staticmethod
    def _ws():
        AISAnnotationLogic.ensureDependencies()
        from AISAnnotationMRML import workspace

        return workspace

    # -- dataset and identity

    def writeDemo(self, outDir: str, progress=None) -> str:
        return self._ws().demo_dataset(outDir, progress=progress)

    def connectServer(self, url: str, user: str, password: str, caFile: Optional[str] = None):
        """Log in to an annotation server (urllib + TLS); the token lives only in the returned dataset."""
        AISAnnotationLogic.ensureDependencies()
        from AISAnnotationLib.dataset import RemoteDataset

        return RemoteDataset.login(url, user, password, ca_file=caFile, store=False)

    def caseQueue(self, bidsRoot: str, raterId: str, role: str, stateFilter: str, search: str = "") -> list:
        return self._ws().case_queue(bidsRoot, raterId, role, stateFilter, search)

    def openCase(self, scene, bidsRoot: str, caseId: str, raterId: str, role: str, progress=None):
        """Load the case into ``scene`` for this rater and role, in the linked AIS layout; return the workspace."""
        ws = self._ws()
        return ws.open_case(scene, bidsRoot, caseId, raterId, role, view_logics=self.viewLogics(scene),
                            progress=progress)

    @staticmethod
    def viewLogics(scene):
        """Slicer's application and layout logics for the AIS layouts (None without a layout manager)."""
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return None
        from AISAnnotationMRML.views import ViewLogics

        return ViewLogics(scene, slicer.app.applicationLogic(), layoutManager.layoutLogic(),
                          create_slice_logics=False)

    # -- annotator

    def effectName(self) -> str:
        return self._ws().EFFECT_NAME

    def prepareEffect(self, editorNode, ws, adcThreshold: Optional[float] = None, parameters=None) -> None:
        """Give the threshold-then-refine effect the case's DWI, ADC and b0 (and optional parameters)."""
        self._ws().set_effect_inputs(editorNode, ws, adcThreshold, parameters)

    def screening(self, ws) -> dict:
        return self._ws().load_screening(ws)

    def saveScreening(self, ws, form: dict) -> str:
        return self._ws().save_screening(ws, form)

    def candidates(self, ws, adcThreshold: float, progress=None) -> list:
        return self._ws().candidates(ws, adcThreshold, progress=progress)

    def notes(self, ws) -> list:
        return self._ws().notes(ws)

    def addNote(self, ws, ras, text: str, decision: str, component: bool = False) -> None:
        self._ws().add_note(ws, ras, text, decision, component)

    def removeNote(self, ws, index: int) -> None:
        self._ws().remove_note(ws, index)

    def submit(self, ws, form: dict, progress=None) -> str:
        return self._ws().submit(ws, form, progress=progress)

    # -- reviewer and arbitrator

    def agreement(self, ws):
        return self._ws().agreement_tables(ws)

    def escalationText(self, ws) -> str:
        return self._ws().escalation_text(ws)

    def startEdit(self, ws) -> str:
        return self._ws().start_edit(ws)

    def decide(self, ws, decision: str, reason: str, progress=None) -> str:
        return self._ws().decide(ws, decision, reason, progress=progress)

    def escalate(self, ws, reason: str) -> str:
        return self._ws().escalate(ws, reason)

    def returnCase(self, ws, returnTo: str, reason: str) -> str:
        """Return the case to annotator A, B or both ("A and B") for re-annotation (reason required)."""
        return self._ws().return_case(ws, returnTo, reason)

    # -- data manager

    def datasetStatus(self, dataset, raterId: str, role: str) -> str:
        """Cases per workflow state; ``dataset`` is the folder path or the server login."""
        return self._ws().dataset_status(dataset, raterId, role)

    def datasetQC(self, dataset, progress=None) -> str:
        return self._ws().dataset_qc(dataset, progress=progress)

    def acceptanceReport(self, dataset, outDir: str, progress=None) -> dict:
        """The report of the folder (built here) or of the server (built there, downloaded to ``outDir``)."""
        if isinstance(dataset, str):
            self.ensureDependencies(REPORT_REQUIREMENTS)
        return self._ws().acceptance_report(dataset, outDir, progress=progress)

    # -- views

    @staticmethod
    def jumpTo(scene, ras) -> None:
        """Centre every slice view (all view groups) on ``ras``."""
        slicer.vtkMRMLSliceNode.JumpAllSlices(scene, float(ras[0]), float(ras[1]), float(ras[2]),
                                              slicer.vtkMRMLSliceNode.CenteredJumpSlice)

    @staticmethod
    def crosshairRas(scene) -> tuple:
        crosshair = scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")
        if crosshair is None:
            raise RuntimeError("No crosshair in the scene: shift+move the mouse over a view first.")
        return tuple(crosshair.GetCrosshairRAS())


#
# AISAnnotationTest
#


class AISAnnotationTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (registered with slicer_add_python_unittest); see Testing/test_workspace.py for the
    same workflow driven headless through the bridge."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_DemoCaseLoads()
        self.setUp()
        self.test_LinkedViews()
        self.setUp()
        self.test_AnnotatorPanel()
        self.setUp()
        self.test_TwoRatersReviewFinal()
        self.setUp()
        self.test_EscalationArbitration()
        self.setUp()
        self.test_ServerConnection()

    def test_DemoCaseLoads(self):
        logic = AISAnnotationLogic()
        root = logic.writeDemo(os.path.join(tempfile.mkdtemp(), "demo"))
        rows = logic.caseQueue(root, "r01", "annotator", "all cases")
        self.assertEqual([r["case_id"] for r in rows], ["sub-01_ses-01", "sub-02_ses-01", "sub-03_ses-01"])
        ws = logic.openCase(slicer.mrmlScene, root, "sub-01_ses-01", "r01", "annotator")
        self.assertTrue({"dwi", "b0", "adc", "eadc", "flair"} <= set(ws.volumes))
        dwi = ws.volumes["dwi"]
        self.assertEqual(dwi.GetImageData().GetDimensions(), (128, 128, 26))
        m = vtk.vtkMatrix4x4()
        dwi.GetIJKToRASMatrix(m)
        self.assertAlmostEqual(abs(m.Determinant()), 1.75 * 1.75 * 5.0, places=3)
        self.assertEqual(ws.segmentation.GetSegmentation().GetNumberOfSegments(), 1)

    def test_LinkedViews(self):
        """Opening a case shows the linked AIS 2x2 layout; moving one view moves the others (issue 4)."""
        from AISAnnotationMRML import layouts

        logic = AISAnnotationLogic()
        root = logic.writeDemo(os.path.join(tempfile.mkdtemp(), "demo"))
        nodes = logic.openCase(slicer.mrmlScene, root, "sub-03_ses-01", "r01", "annotator").volumes
        layoutManager = slicer.app.layoutManager()
        layoutNode = layoutManager.layoutLogic().GetLayoutNode()
        self.assertEqual(layoutNode.GetViewArrangement(), layouts.AIS_2X2)
        for layoutId in layouts.LAYOUTS:
            self.assertTrue(layoutNode.IsLayoutDescription(layoutId))
        for viewName, key in (("AIS-DWI", "dwi"), ("AIS-ADC", "adc"), ("AIS-eADC", "eadc"), ("AIS-FLAIR", "flair")):
            sliceWidget = layoutManager.sliceWidget(viewName)
            self.assertIsNotNone(sliceWidget, viewName)
            composite = sliceWidget.mrmlSliceCompositeNode()
            self.assertEqual(composite.GetBackgroundVolumeID(), nodes[key].GetID())
            self.assertTrue(composite.GetLinkedControl())
        adcLogic = layoutManager.sliceWidget("AIS-ADC").sliceLogic()
        adcLogic.StartSliceOffsetInteraction()
        adcLogic.SetSliceOffset(adcLogic.GetSliceOffset() + 10.0)
        adcLogic.EndSliceOffsetInteraction()
        offset = adcLogic.GetSliceOffset()
        for viewName in ("AIS-DWI", "AIS-eADC", "AIS-FLAIR"):
            self.assertAlmostEqual(layoutManager.sliceWidget(viewName).sliceLogic().GetSliceOffset(), offset, places=3)

    def test_AnnotatorPanel(self):
        """Drive the annotator panel as a user would: queue, open, candidates, note, refused and accepted submit."""
        logic = AISAnnotationLogic()
        root = logic.writeDemo(os.path.join(tempfile.mkdtemp(), "demo"))
        slicer.util.selectModule("AISAnnotation")
        widget = slicer.util.getModuleWidget("AISAnnotation")
        p = widget._parameterNode
        p.bidsRoot = pathlib.Path(root)
        p.raterId = "r01"
        p.role = "annotator"
        p.queueFilter = "waiting for me"
        widget.onRefreshQueue()
        self.assertEqual(widget.ui.caseQueueTableWidget.rowCount, 3)
        self.assertFalse(widget.ui.annotatorCollapsibleButton.isHidden())
        self.assertTrue(widget.ui.reviewerCollapsibleButton.isHidden())
        widget.ui.caseQueueTableWidget.selectRow(2)
        self.assertTrue(widget.ui.openCaseButton.enabled)
        widget.onOpenCase()
        self.assertEqual(p.caseId, "sub-03_ses-01")
        self.assertEqual(widget.ui.segmentEditorWidget.activeEffect().name, logic.effectName())
        widget.onPreannotate()
        self.assertGreater(widget.ui.candidatesTableWidget.rowCount, 0)
        widget.onCandidateClicked(0, 0)
        p.noteText = "bright on DWI, ADC not low: shine-through, left out"
        p.noteDecision = "excluded"
        widget.onAddNote()
        self.assertEqual(widget.ui.notesTableWidget.rowCount, 1)
        from AISAnnotationLib.workflow import MaskQCError

        with self.assertRaisesRegex(MaskQCError, "submission refused"):  # empty, and "no visible lesion" not ticked
            widget.onSubmit()
        widget.ui.segmentEditorWidget.activeEffect().self().onApply()
        p.likertDwi, p.likertAdc, p.likertEadc, p.likertFlair = 4, 4, 4, 3
        widget.onSaveScreening()
        widget.onSubmit()
        rows = {r["case_id"]: r for r in logic.caseQueue(root, "r01", "annotator", "all cases")}
        self.assertEqual(rows["sub-03_ses-01"]["submitted"], "r01")
        self.assertEqual(widget.ui.caseQueueTableWidget.rowCount, 2)  # no longer waiting for r01

    def _annotateWithEffect(self, logic, root, raterId, effectParameters):
        """Open the case as ``raterId``, apply the "AIS threshold" effect through the segment editor, submit.

        Returns the number of voxels the effect put in the rater's segment.
        """
        ws = logic.openCase(slicer.mrmlScene, root, "sub-01_ses-01", raterId, "annotator")
        editorNode = logic.getSegmentEditorNode()
        logic.prepareEffect(editorNode, ws, parameters=effectParameters)
        editorWidget = slicer.qMRMLSegmentEditorWidget()
        editorWidget.setMRMLScene(slicer.mrmlScene)
        editorWidget.setMRMLSegmentEditorNode(editorNode)
        editorWidget.setSegmentationNode(ws.segmentation)
        editorWidget.setSourceVolumeNode(ws.volumes["dwi"])
        editorWidget.setCurrentSegmentID(ws.editable_segment_id)
        editorWidget.setActiveEffectByName(logic.effectName())
        effect = editorWidget.activeEffect()
        self.assertIsNotNone(effect, f"segment editor effect {logic.effectName()!r} is not registered")
        self.assertEqual(effect.parameter("AdcVolumeNodeID"), ws.volumes["adc"].GetID())
        # a model folder without a card is refused in one sentence in the effect's status (no crash)
        effect.setParameter("CandidateSource", "model")
        effect.setParameter("ModelDirectory", tempfile.mkdtemp())
        self.assertIsNone(effect.self().computeResult(effect.self().ensureContext()))
        self.assertIn("no model_card.json", effect.self().statusLabel.text)
        effect.setParameter("CandidateSource", "classical")
        effect.self().onApply()
        from AISAnnotationMRML.model_nodes import recorded_tool_parameters

        used = recorded_tool_parameters(ws.segmentation)  # becomes the submission's AISParameters
        self.assertEqual((used["PreannotationSource"], used["ADCThreshold"]), ("classical", 620.0))
        editorWidget.setActiveEffect(None)
        from AISAnnotationMRML import workspace

        voxels = workspace.segment_voxel_count(ws, ws.editable_segment_id)
        self.assertGreater(voxels, 0, f"the effect left {raterId}'s segment empty")
        form = {"likert.dwi": 4, "likert.adc": 4, "likert.eadc": 4, "likert.flair": 4, "no_visible_lesion": False}
        logic.saveScreening(ws, form)
        message = logic.submit(ws, form)
        self.assertIn(f"revision 1 of {raterId}", message)
        editorWidget.setSegmentationNode(None)
        return voxels

    def test_TwoRatersReviewFinal(self):
        """Two annotators with the effect (the second one misses the small lesion), review, final mask.

        The same run is tested headless by Testing/test_workspace.py::test_effect_run_of_the_self_test.
        """
        from AISAnnotationMRML import workspace

        logic = AISAnnotationLogic()
        root = logic.writeDemo(os.path.join(tempfile.mkdtemp(), "demo"))
        self.delayDisplay("Annotator r01: AIS threshold with its defaults")
        voxelsA = self._annotateWithEffect(logic, root, "r01", {})
        slicer.mrmlScene.Clear()
        self.delayDisplay("Annotator r02: AIS threshold keeping only lesions of 1 ml or more")
        voxelsB = self._annotateWithEffect(logic, root, "r02", {"MinVolumeMm3": 1000.0})
        self.assertLess(voxelsB, voxelsA)
        slicer.mrmlScene.Clear()

        self.delayDisplay("Reviewer")
        rows = logic.caseQueue(root, "rv01", "reviewer", "waiting for me")
        self.assertEqual([r["case_id"] for r in rows], ["sub-01_ses-01"])
        ws = logic.openCase(slicer.mrmlScene, root, "sub-01_ses-01", "rv01", "reviewer")
        self.assertEqual(set(ws.rater_segment_ids), {"A", "B"})
        metrics, lesions = logic.agreement(ws)
        dice = {m["key"]: m["value"] for m in metrics}["dice"]
        self.assertGreater(dice, 0.9)
        self.assertLess(dice, 1.0)
        self.assertIn("only A" if ws.raters["A"] == "r01" else "only B", [les["match"] for les in lesions])
        logic.decide(ws, "union", "")

        result = workspace.final_result(root, "sub-01_ses-01")
        self.assertEqual(result["state"], "final")
        self.assertTrue(os.path.isfile(result["mask_path"]), result["mask_path"])
        self.assertTrue(os.path.isfile(result["sidecar_path"]), result["sidecar_path"])
        self.assertEqual(result["voxels"], voxelsA)
        self.assertEqual(result["sidecar"]["Type"], "Lesion")
        self.assertIn("SpatialReference", result["sidecar"])
        logging.info(f"AISAnnotation self-test: Dice {dice:.3f}, final {result['voxels']} voxels")
        self.delayDisplay("Test passed")

    def test_EscalationArbitration(self):
        """The reviewer escalates a disputed case; the arbitrator sees why and decides (reason required).

        The same path is tested headless by Testing/test_workspace.py::test_escalation_then_arbitrator_edits_and_accepts.
        """
        from AISAnnotationMRML import workspace

        logic = AISAnnotationLogic()
        root = logic.writeDemo(os.path.join(tempfile.mkdtemp(), "demo"))
        voxelsA = self._annotateWithEffect(logic, root, "r01", {})
        slicer.mrmlScene.Clear()
        self._annotateWithEffect(logic, root, "r02", {"MinVolumeMm3": 1000.0})
        slicer.mrmlScene.Clear()
        self.delayDisplay("Reviewer escalates")
        ws = logic.openCase(slicer.mrmlScene, root, "sub-01_ses-01", "rv01", "reviewer")
        from AISAnnotationLib.errors import InputError

        with self.assertRaisesRegex(InputError, "reason"):  # escalation needs a reason
            logic.escalate(ws, "")
        self.assertIn("escalated", logic.escalate(ws, "small lesion: A includes it, B does not"))
        slicer.mrmlScene.Clear()
        self.delayDisplay("Arbitrator decides")
        rows = logic.caseQueue(root, "ar01", "arbitrator", "waiting for me")
        self.assertEqual([r["case_id"] for r in rows], ["sub-01_ses-01"])
        ws = logic.openCase(slicer.mrmlScene, root, "sub-01_ses-01", "ar01", "arbitrator")
        self.assertIn("A includes it, B does not", logic.escalationText(ws))
        keepA = "accept_a" if ws.raters["A"] == "r01" else "accept_b"
        logic.decide(ws, keepA, "the small lesion is real on ADC")
        result = workspace.final_result(root, "sub-01_ses-01")
        self.assertEqual(result["state"], "final")
        self.assertEqual(result["voxels"], voxelsA)
        self.delayDisplay("Test passed")

    def test_ServerConnection(self):
        """Server mode: a real annotation server on 127.0.0.1 over a demo dataset, the demo team logged in
        with the module's own login; escalation → arbitration and return → re-annotation → union over HTTP.

        The steps are AISAnnotationMRML.server_flows, run headless by Testing/test_server_flows.py.
        """
        import shutil

        logic = AISAnnotationLogic()
        logic.ensureDependencies(SERVER_REQUIREMENTS)
        from AISAnnotationMRML import server_flows

        self.delayDisplay("Starting the annotation server")
        server = server_flows.start_demo_server(tempfile.mkdtemp(), python=shutil.which("PythonSlicer"),
                                                login=logic.connectServer)
        try:
            summary = server_flows.run_server_flows(slicer.mrmlScene, server.url, server.password,
                                                    login=logic.connectServer)
        finally:
            server.stop()
        self.assertEqual({c: r["state"] for c, r in summary["cases"].items()},
                         {"sub-01_ses-01": "final", "sub-02_ses-01": "final"})
        logging.info(f"AISAnnotation self-test over {summary['url']}: Dice {summary['dice']:.3f}")
        self.delayDisplay("Test passed")
