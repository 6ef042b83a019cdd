"""Segment editor effect "AIS threshold": ADC < 620×10⁻⁶ mm²/s pre-annotation, then refine on DWI.

Only moves arrays between MRML and the library: the candidate math is
``AISAnnotationLib.preannotate``; node glue is ``AISAnnotationMRML.preannotation_nodes`` and
``AISAnnotationMRML.uncertain_nodes``. The segment editor's source volume is the DWI b1000:
the segmentation geometry is the DWI grid, the ADC volume chosen here is resampled onto it.
"""

from __future__ import annotations

import json
import logging
import os

import ctk
import qt
import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

# parameter name in the segment editor node → (library field, default, slider min, max, step, suffix)
SLIDERS = {
    "AdcThreshold": ("adc_threshold", 620.0, 100.0, 2000.0, 10.0, " ×10⁻⁶ mm²/s"),
    "CoreDwiRatio": ("core_dwi_ratio", 1.4, 1.0, 4.0, 0.05, " × parenchyma DWI"),
    "CoreMeanDwiRatio": ("core_mean_dwi_ratio", 1.7, 1.0, 4.0, 0.05, " × parenchyma DWI"),
    "CoreMeanAdcMax": ("core_mean_adc_max", 450.0, 100.0, 2000.0, 10.0, " ×10⁻⁶ mm²/s"),
    "GrowSteps": ("grow_steps", 1, 0, 10, 1, " voxel rings"),
    "GrowDwiRatio": ("grow_dwi_ratio", 1.3, 1.0, 4.0, 0.05, " × parenchyma DWI"),
    "GrowAdcMax": ("grow_adc_max", 750.0, 100.0, 3000.0, 10.0, " ×10⁻⁶ mm²/s"),
    "MinVolumeMm3": ("min_volume_mm3", 60.0, 0.0, 5000.0, 10.0, " mm³"),
    "BrainErodeMm": ("brain_erode_mm", 4.0, 0.0, 20.0, 0.5, " mm"),
    "FociPeakRatio": ("foci_peak_ratio", 1.2, 0.0, 4.0, 0.05, " × local DWI (0: off)"),
}
ADVANCED = ("CoreMeanDwiRatio", "CoreMeanAdcMax", "GrowSteps", "GrowDwiRatio", "GrowAdcMax", "BrainErodeMm",
            "FociPeakRatio")
UNCERTAIN_ATTRIBUTE = "AIS.UncertainRegions"


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):
    """ADC threshold + DWI refinement with live preview, candidate list, shine-through removal, notes."""

    def __init__(self, scriptedEffect):
        scriptedEffect.name = "AIS threshold"  # no tr: effects are found by name
        scriptedEffect.title = "AIS pre-annotate"
        scriptedEffect.perSegment = True
        scriptedEffect.requireSegments = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.context = None
        self.contextKey = None
        self.result = None
        self.previewBuffer = None
        self.previewNode = None
        self.previewTimer = qt.QTimer()
        self.previewTimer.setSingleShot(True)
        self.previewTimer.setInterval(30)
        self.previewTimer.connect("timeout()", self.updatePreview)
        self.fullTimer = qt.QTimer()
        self.fullTimer.setSingleShot(True)
        self.fullTimer.setInterval(300)
        self.fullTimer.connect("timeout()", self.updateCandidates)

    def cleanup(self):
        self.previewTimer.disconnect("timeout()", self.updatePreview)
        self.fullTimer.disconnect("timeout()", self.updateCandidates)

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        clonedEffect = effects.qSlicerSegmentEditorScriptedEffect(None)
        clonedEffect.setPythonSource(__file__.replace("\\", "/"))
        return clonedEffect

    def icon(self):
        iconPath = os.path.join(os.path.dirname(__file__), "..", "Resources", "Icons", "SegmentEditorAISThreshold.png")
        if os.path.exists(iconPath):
            return qt.QIcon(iconPath)
        return qt.QIcon()

    def helpText(self):
        return """<html>Acute ischaemic core pre-annotation (expert consensus 2025): <b>ADC &lt; 620×10⁻⁶ mm²/s</b>
inside the eroded brain, DWI-bright relative to normal parenchyma, islands below a minimum volume dropped,
grown one ring on DWI. Source volume: the <b>DWI b1000</b>; choose the ADC below.<p>
<ul style="margin: 0">
<li>The preview (label layer) follows the sliders in real time.
<li><b>Apply</b>: write the candidates into the selected segment (undoable).
<li><b>Refine on DWI</b>: paint/erase only where DWI is in the editable intensity range.
<li><b>Remove shine-through</b>: erase flagged DWI-bright, ADC-normal regions from the segment.
<li>Double-click a candidate to jump to it; add an uncertain-region note with a decision.
<li>Small restricted foci are listed for review (not painted); each candidate has a confidence.
<li><b>Candidates</b>: classical, a trained model (a folder with model_card.json and an ONNX file), or both.
</ul></html>"""

    # ------------------------------------------------------------------ GUI
    def setupOptionsFrame(self):
        from AISAnnotationLib.ai.catalog import SOURCES  # candidate source → label, the browser tool's choice

        self.adcSelector = slicer.qMRMLNodeComboBox()
        self.adcSelector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
        self.adcSelector.addEnabled = False
        self.adcSelector.removeEnabled = False
        self.adcSelector.noneEnabled = True
        self.adcSelector.setMRMLScene(slicer.mrmlScene)
        self.adcSelector.setToolTip("ADC map (any unit; detected). Resampled onto the DWI grid when needed.")
        self.scriptedEffect.addLabeledOptionsWidget("ADC volume:", self.adcSelector)
        self.adcSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateMRMLFromGUI)

        self.b0Selector = slicer.qMRMLNodeComboBox()
        self.b0Selector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
        self.b0Selector.addEnabled = False
        self.b0Selector.removeEnabled = False
        self.b0Selector.noneEnabled = True
        self.b0Selector.setMRMLScene(slicer.mrmlScene)
        self.b0Selector.setToolTip("Optional b0 for the brain mask (else the DWI is used).")
        self.scriptedEffect.addLabeledOptionsWidget("b0 volume:", self.b0Selector)
        self.b0Selector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateMRMLFromGUI)

        self.sourceCombo = qt.QComboBox()
        for key, label in SOURCES.items():
            self.sourceCombo.addItem(label, key)
        self.sourceCombo.setToolTip("Where candidates come from: the classical criteria, a trained model, or both")
        self.scriptedEffect.addLabeledOptionsWidget("Candidates:", self.sourceCombo)
        self.sourceCombo.connect("currentIndexChanged(int)", self.updateMRMLFromGUI)
        self.modelPath = ctk.ctkPathLineEdit()
        self.modelPath.filters = ctk.ctkPathLineEdit.Dirs
        self.modelPath.setToolTip("Model directory: model_card.json and the ONNX file it names")
        self.scriptedEffect.addLabeledOptionsWidget("Model folder:", self.modelPath)
        self.modelPath.connect("currentPathChanged(QString)", self.updateMRMLFromGUI)

        self.sliders = {}
        advanced = ctk.ctkCollapsibleButton()
        advanced.text = "Advanced criteria"
        advanced.collapsed = True
        advancedLayout = qt.QFormLayout(advanced)
        for name, (field, default, lo, hi, step, suffix) in SLIDERS.items():
            s = ctk.ctkSliderWidget()
            s.minimum, s.maximum, s.singleStep = lo, hi, step
            s.decimals = 0 if step >= 1 else 2
            s.suffix = suffix
            s.value = default
            s.setToolTip(field)
            s.connect("valueChanged(double)", self.updateMRMLFromGUI)
            self.sliders[name] = s
            label = field.replace("_", " ").capitalize() + ":"
            if name in ADVANCED:
                advancedLayout.addRow(label, s)
            else:
                self.scriptedEffect.addLabeledOptionsWidget(label, s)
        self.scriptedEffect.addOptionsWidget(advanced)

        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        self.scriptedEffect.addOptionsWidget(self.statusLabel)

        self.candidateList = qt.QListWidget()
        self.candidateList.setToolTip("Double-click to jump to a candidate")
        self.candidateList.connect("itemDoubleClicked(QListWidgetItem*)", self.onCandidateDoubleClicked)
        self.scriptedEffect.addOptionsWidget(self.candidateList)

        buttons = qt.QHBoxLayout()
        self.applyButton = qt.QPushButton("Apply")
        self.applyButton.objectName = self.__class__.__name__ + "Apply"
        self.applyButton.setToolTip("Write the candidates into the selected segment (replaces it; undoable)")
        self.applyButton.connect("clicked()", self.onApply)
        self.refineButton = qt.QPushButton("Refine on DWI")
        self.refineButton.setToolTip("Set the editable intensity range to DWI-bright voxels and switch to Paint")
        self.refineButton.connect("clicked()", self.onRefine)
        self.shineButton = qt.QPushButton("Remove shine-through")
        self.shineButton.setToolTip("Erase flagged T2 shine-through (DWI bright, ADC not low) from the segment")
        self.shineButton.connect("clicked()", self.onRemoveShineThrough)
        for b in (self.applyButton, self.refineButton, self.shineButton):
            buttons.addWidget(b)
        self.scriptedEffect.addOptionsWidget(buttons)

        notes = qt.QHBoxLayout()
        self.noteEdit = qt.QLineEdit()
        self.noteEdit.placeholderText = "note on the selected candidate (uncertain region)"
        self.decisionCombo = qt.QComboBox()
        self.decisionCombo.addItems(["for-review", "included", "excluded"])
        self.noteButton = qt.QPushButton("Add note")
        self.noteButton.connect("clicked()", self.onAddNote)
        notes.addWidget(self.noteEdit)
        notes.addWidget(self.decisionCombo)
        notes.addWidget(self.noteButton)
        self.scriptedEffect.addOptionsWidget(notes)

    def createCursor(self, widget):
        return slicer.util.mainWindow().cursor

    def setMRMLDefaults(self):
        for name, (_field, default, *_rest) in SLIDERS.items():
            self.scriptedEffect.setParameterDefault(name, default)
        self.scriptedEffect.setParameterDefault("AdcVolumeNodeID", "")
        self.scriptedEffect.setParameterDefault("B0VolumeNodeID", "")
        self.scriptedEffect.setParameterDefault("CandidateSource", "classical")
        self.scriptedEffect.setParameterDefault("ModelDirectory", "")

    def updateGUIFromMRML(self):
        for name, s in self.sliders.items():
            was = s.blockSignals(True)
            s.value = self.scriptedEffect.doubleParameter(name)
            s.blockSignals(was)
        for selector, key in ((self.adcSelector, "AdcVolumeNodeID"), (self.b0Selector, "B0VolumeNodeID")):
            was = selector.blockSignals(True)
            selector.setCurrentNodeID(self.scriptedEffect.parameter(key) or None)
            selector.blockSignals(was)
        was = self.sourceCombo.blockSignals(True)
        self.sourceCombo.currentIndex = max(0, self.sourceCombo.findData(self.scriptedEffect.parameter("CandidateSource")))
        self.sourceCombo.blockSignals(was)
        was = self.modelPath.blockSignals(True)
        self.modelPath.currentPath = self.scriptedEffect.parameter("ModelDirectory")
        self.modelPath.blockSignals(was)

    def updateMRMLFromGUI(self):
        for name, s in self.sliders.items():
            self.scriptedEffect.setParameter(name, s.value)
        self.scriptedEffect.setParameter("AdcVolumeNodeID", self.adcSelector.currentNodeID or "")
        self.scriptedEffect.setParameter("B0VolumeNodeID", self.b0Selector.currentNodeID or "")
        self.scriptedEffect.setParameter("CandidateSource", self.sourceCombo.currentData or "classical")
        self.scriptedEffect.setParameter("ModelDirectory", self.modelPath.currentPath or "")
        self.previewTimer.start()
        self.fullTimer.start()

    def activate(self):
        self.previewTimer.start()
        self.fullTimer.start()

    def deactivate(self):
        self.previewTimer.stop()
        self.fullTimer.stop()
        from AISAnnotationMRML.preannotation_nodes import remove_preview_node

        remove_preview_node(slicer.mrmlScene, self.previewNode)
        self.previewNode = None
        self.previewBuffer = None

    # ------------------------------------------------------------------ library calls
    def parameters(self):
        from AISAnnotationLib.preannotate import INTEGER_PARAMETERS, PreannotationParameters

        values = {}
        for name, (field, *_rest) in SLIDERS.items():
            v = self.scriptedEffect.doubleParameter(name)
            values[field] = int(round(v)) if field in INTEGER_PARAMETERS else v
        return PreannotationParameters(**values)

    def dwiNode(self):
        return self.scriptedEffect.parameterSetNode().GetSourceVolumeNode()

    def ensureContext(self):
        """Build (or reuse) the per-case cache; None with a status message when inputs are missing."""
        from AISAnnotationMRML.preannotation_nodes import context_from_nodes

        params = self.parameters()
        dwi = self.dwiNode()
        adcID = self.scriptedEffect.parameter("AdcVolumeNodeID")
        b0ID = self.scriptedEffect.parameter("B0VolumeNodeID")
        adc = slicer.mrmlScene.GetNodeByID(adcID) if adcID else None
        b0 = slicer.mrmlScene.GetNodeByID(b0ID) if b0ID else None
        if dwi is None or adc is None:
            self.setStatus("Select the DWI b1000 as source volume and choose the ADC volume.")
            return None
        key = (dwi.GetID(), dwi.GetMTime(), adc.GetID(), adc.GetMTime(), b0ID, params.brain_erode_mm)
        if self.context is None or key != self.contextKey:
            qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
            try:
                self.context = context_from_nodes(adc, dwi, b0, params)
                self.contextKey = key
            except Exception as exc:  # AISError and VTK/ITK errors: show, do not crash the editor
                logging.error(f"AIS threshold: {exc}")
                self.setStatus(str(exc))
                self.context = None
                return None
            finally:
                qt.QApplication.restoreOverrideCursor()
        return self.context

    def setStatus(self, text):
        if hasattr(self, "statusLabel"):
            self.statusLabel.text = text

    def updatePreview(self):
        """Threshold-only update of the preview labelmap (real time while sliders move)."""
        from AISAnnotationMRML.preannotation_nodes import show_preview_in_slice_views

        ctx = self.ensureContext()
        if ctx is None:
            return
        p = self.parameters()
        self.previewBuffer = ctx.preview(p.adc_threshold, p.core_dwi_ratio, out=self.previewBuffer)
        self.showPreview(self.previewBuffer)
        show_preview_in_slice_views(slicer.mrmlScene, self.previewNode)

    def showPreview(self, mask):
        from AISAnnotationMRML.preannotation_nodes import update_preview_node

        self.previewNode = update_preview_node(slicer.mrmlScene, mask, self.dwiNode(), self.previewNode)
        if self.previewNode.GetDisplayNode() is not None:
            self.previewNode.GetDisplayNode().SetVisibility(True)

    def updateCandidates(self):
        """Full candidate computation (islands, growth, shine-through); updates list and preview."""
        from AISAnnotationLib.shinethrough import shine_through_summary

        ctx = self.ensureContext()
        if ctx is None:
            return None
        self.result = self.computeResult(ctx)
        if self.result is None:
            return None
        self.showPreview(self.result.mask.astype("uint8", order="F"))
        self.candidateList.clear()
        for c in self.result.candidates:
            x, y, z = c.centroid_ras
            shown = "" if c.in_mask else " (review: not painted)"
            self.candidateList.addItem(f"#{c.id}: {c.volume_ml:.2f} ml, ADC {c.mean_adc:.0f}, "
                                       f"DWI ×{c.mean_dwi_ratio:.2f}, confidence {c.confidence:.2f} "
                                       f"[{c.source}] at ({x:.0f}, {y:.0f}, {z:.0f}){shown}")
        ml = sum(c.volume_ml for c in self.result.candidates)
        self.setStatus(f"{len(self.result.candidates)} candidate(s), {ml:.2f} ml; "
                       f"{shine_through_summary(self.result.shine_through_regions)}")
        return self.result

    def computeResult(self, ctx):
        """Classical candidates, the trained model's, or both (per the "Candidates" choice), through the
        library path of the browser tool (``AISAnnotationMRML.model_nodes.preannotate_in_scene``): the model
        card's input sequences come from the case loaded in the scene; a missing one is refused in words."""
        from AISAnnotationMRML.model_nodes import preannotate_in_scene

        source = self.scriptedEffect.parameter("CandidateSource") or "classical"
        b0ID = self.scriptedEffect.parameter("B0VolumeNodeID")
        b0 = slicer.mrmlScene.GetNodeByID(b0ID) if b0ID else None
        if source != "classical":
            qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            return preannotate_in_scene(slicer.mrmlScene, self.dwiNode(), ctx, self.parameters(), source,
                                        self.scriptedEffect.parameter("ModelDirectory"),
                                        extra_nodes={"b0": b0} if b0 is not None else None)
        except Exception as exc:  # AISError, ONNX Runtime errors: one sentence, do not crash the editor
            logging.error(f"AIS threshold ({source}): {exc}")
            self.setStatus(str(exc))
            return None
        finally:
            if source != "classical":
                qt.QApplication.restoreOverrideCursor()

    # ------------------------------------------------------------------ actions
    def onApply(self):
        from AISAnnotationMRML.preannotation_nodes import ensure_dwi_geometry, modifier_labelmap

        if not self.scriptedEffect.confirmCurrentSegmentVisible():
            return
        result = self.updateCandidates()
        if result is None:
            return
        segmentationNode = self.scriptedEffect.parameterSetNode().GetSegmentationNode()
        if not ensure_dwi_geometry(segmentationNode, self.dwiNode()):
            self.setStatus("Warning: this segmentation was drawn on another grid; the result is resampled onto it. "
                           "Masks are expected on the DWI grid.")
        self.scriptedEffect.saveStateForUndo()
        modifier = modifier_labelmap(result.mask, self.dwiNode())
        self.scriptedEffect.modifySelectedSegmentByLabelmap(
            modifier, slicer.qSlicerSegmentEditorAbstractEffect.ModificationModeSet)
        # what was applied (ADC threshold, source, model identity) becomes the submission's AISParameters
        from AISAnnotationMRML.model_nodes import record_tool_parameters

        record_tool_parameters(segmentationNode, self.parameters().adc_threshold,
                               self.scriptedEffect.parameter("CandidateSource") or "classical", result)

    def onRefine(self):
        from AISAnnotationMRML.preannotation_nodes import set_editable_intensity_range

        ctx = self.ensureContext()
        if ctx is None:
            return
        lower, upper = ctx.refine_intensity_range(self.parameters())
        set_editable_intensity_range(self.scriptedEffect.parameterSetNode(), lower, upper)
        self.scriptedEffect.selectEffect("Paint")

    def onRemoveShineThrough(self):
        from AISAnnotationMRML.preannotation_nodes import modifier_labelmap

        result = self.result or self.updateCandidates()
        if result is None or not result.shine_through.any():
            self.setStatus("No T2 shine-through flagged.")
            return
        self.scriptedEffect.saveStateForUndo()
        modifier = modifier_labelmap(result.shine_through, self.dwiNode())
        self.scriptedEffect.modifySelectedSegmentByLabelmap(
            modifier, slicer.qSlicerSegmentEditorAbstractEffect.ModificationModeRemove)

    def onCandidateDoubleClicked(self, item):
        from AISAnnotationMRML.uncertain_nodes import jump_to

        row = self.candidateList.row(item)
        if self.result is not None and 0 <= row < len(self.result.candidates):
            jump_to(slicer.mrmlScene, self.result.candidates[row].centroid_ras)

    def onAddNote(self):
        """Record an uncertain region at the selected candidate on the segmentation node (R18).

        When the selected segment has a component at the candidate, the note is about that
        component (segment id, size, centroid); otherwise about the candidate's centre point.
        """
        from AISAnnotationLib.errors import InputError
        from AISAnnotationLib.uncertain import UncertainRegion, UncertainRegionList
        from AISAnnotationMRML.uncertain_nodes import region_from_segment_component

        row = self.candidateList.currentRow
        if self.result is None or not 0 <= row < len(self.result.candidates):
            self.setStatus("Select a candidate first.")
            return
        parameterSetNode = self.scriptedEffect.parameterSetNode()
        seg = parameterSetNode.GetSegmentationNode()
        stored = seg.GetAttribute(UNCERTAIN_ATTRIBUTE)
        regions = UncertainRegionList.from_dict(json.loads(stored)) if stored else UncertainRegionList()
        cand = self.result.candidates[row]
        note, decision, rater = self.noteEdit.text, self.decisionCombo.currentText, os.environ.get("USER", "")
        try:
            region = region_from_segment_component(seg, parameterSetNode.GetSelectedSegmentID(), self.dwiNode(),
                                                   cand.centroid_ras, note, decision=decision, rater=rater)
        except (InputError, RuntimeError):  # no segment selected / no component there
            region = UncertainRegion(cand.centroid_ras, note, decision=decision, rater=rater)
        regions.add(region)
        seg.SetAttribute(UNCERTAIN_ATTRIBUTE, json.dumps(regions.to_dict()))
        self.setStatus(f"{len(regions.regions)} uncertain-region note(s) on {seg.GetName()}")
