"""AISAnnotation: Slicer module for acute ischemic stroke MRI annotation.

Module, Widget, thin Logic and the Slicer self-test. Every behaviour lives in
AISAnnotationLib (pure Python) or AISAnnotationMRML (scene passed in); the widget
only wires signals to those calls.
"""

from __future__ import annotations

import logging
import os
import tempfile

import slicer
import vtk
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin


class AISAnnotation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "AIS Annotation"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["Segmentations", "SegmentEditor"]
        self.parent.contributors = ["AISAnnotation developers"]
        self.parent.helpText = (
            "Annotation of acute ischemic stroke (AIS) lesions on brain MRI as the Chinese expert "
            "consensus on AIS MRI annotation (2025) prescribes: DWI b1000 as primary sequence with "
            "ADC, eADC and FLAIR linked; ADC &lt; 620×10⁻⁶ mm²/s as initial lesion refined on DWI; "
            "two blinded annotators, review and arbitration; QC and a BIDS dataset."
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer. Follows the Chinese Medical Doctor Association radiology branch "
            "emergency imaging committee's expert consensus on MRI annotation of acute ischemic stroke."
        )
        slicer.app.connect("startupCompleted()", registerAISLayouts)


def registerAISLayouts() -> None:
    """Add the AIS layouts (2x2, row, 3-plane, review, ...) to Slicer's layout node once at start-up."""
    if slicer.app.layoutManager() is None:  # no GUI (e.g. --no-main-window)
        return
    from AISAnnotationMRML.layouts import register_layouts

    register_layouts(slicer.app.layoutManager().layoutLogic().GetLayoutNode())


@parameterNodeWrapper
class AISAnnotationParameterNode:
    """State that survives scene save/restore."""

    bidsRoot: str = ""
    caseId: str = ""


class AISAnnotationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/AISAnnotation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = AISAnnotationLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.loadDemoButton.connect("clicked(bool)", self.onLoadDemo)
        self.ui.refreshCasesButton.connect("clicked(bool)", self.onRefreshCases)
        self.ui.openCaseButton.connect("clicked(bool)", self.onOpenCase)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def onLoadDemo(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to write the demo dataset.", waitCursor=True):
            root = self.logic.writeDemo(os.path.join(slicer.app.temporaryPath, "AISAnnotationDemo"))
            self._parameterNode.bidsRoot = root
            self.onRefreshCases()

    def onRefreshCases(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to list the cases.", waitCursor=True):
            self.ui.caseComboBox.clear()
            for caseId in self.logic.caseIds(self._parameterNode.bidsRoot):
                self.ui.caseComboBox.addItem(caseId)

    def onOpenCase(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to open the case.", waitCursor=True):
            caseId = self.ui.caseComboBox.currentText
            self._parameterNode.caseId = caseId
            self.logic.openCaseInViews(slicer.mrmlScene, self._parameterNode.bidsRoot, caseId)


class AISAnnotationLogic(ScriptedLoadableModuleLogic):
    """Thin logic: calls into AISAnnotationLib / AISAnnotationMRML with the scene passed in."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return AISAnnotationParameterNode(super().getParameterNode())

    @staticmethod
    def ensureDependencies() -> None:
        """Install nibabel (not bundled with Slicer) on first use, after asking the user."""
        try:
            import nibabel  # noqa: F401
        except ImportError:
            if not slicer.util.confirmOkCancelDisplay(
                "AIS Annotation needs the Python package 'nibabel' to read NIfTI files. Install it now?"
            ):
                raise RuntimeError("nibabel is required to read NIfTI files") from None
            slicer.util.pip_install("nibabel")

    def writeDemo(self, outDir: str) -> str:
        self.ensureDependencies()
        from AISAnnotationLib.phantom import write_demo_dataset

        if not os.path.exists(os.path.join(outDir, "dataset_description.json")):
            write_demo_dataset(outDir)
        return outDir

    def caseIds(self, bidsRoot: str) -> list[str]:
        from AISAnnotationLib import bids

        return [bids.prefix(sub, ses) for sub, ses in bids.find_sessions(bidsRoot)]

    def openCase(self, scene, bidsRoot: str, caseId: str):
        """Load every sequence of ``caseId`` (``sub-X_ses-Y``) into ``scene``; return key → node."""
        self.ensureDependencies()
        from AISAnnotationLib.case import load_case
        from AISAnnotationMRML.case_nodes import load_case_nodes

        parts = dict(p.split("-", 1) for p in caseId.split("_"))
        case = load_case(bidsRoot, parts["sub"], parts.get("ses"))
        logging.info(f"AISAnnotation: opened {caseId} ({', '.join(case.images)})")
        return load_case_nodes(scene, case)


    def openCaseInViews(self, scene, bidsRoot: str, caseId: str, kind: str = "2x2"):
        """Open ``caseId`` and show it in the linked AIS layout (DWI b1000, ADC, eADC, FLAIR; presets applied).

        Returns ``(nodes, info)``: key → volume node, and the layout/view description of
        ``AISAnnotationMRML.views.show_case``.
        """
        self.ensureDependencies()
        from AISAnnotationLib.case import load_case
        from AISAnnotationMRML.case_nodes import load_case_nodes
        from AISAnnotationMRML.views import ViewLogics, show_case

        parts = dict(p.split("-", 1) for p in caseId.split("_"))
        case = load_case(bidsRoot, parts["sub"], parts.get("ses"))
        nodes = load_case_nodes(scene, case)
        layoutManager = slicer.app.layoutManager()
        viewLogics = ViewLogics(scene, app_logic=slicer.app.applicationLogic(),
                                layout_logic=layoutManager.layoutLogic() if layoutManager else None,
                                create_slice_logics=layoutManager is None)
        info = show_case(viewLogics, nodes, kind, brain=case.brain_mask())
        logging.info(f"AISAnnotation: {caseId} shown in layout {info['layout']}")
        return nodes, info


class AISAnnotationTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (registered with slicer_add_python_unittest)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_DemoCaseLoads()
        self.setUp()
        self.test_LinkedViews()

    def test_DemoCaseLoads(self):
        import numpy as np

        from AISAnnotationMRML.volumes import ijk_to_ras_affine

        logic = AISAnnotationLogic()
        root = logic.writeDemo(os.path.join(tempfile.mkdtemp(), "demo"))
        ids = logic.caseIds(root)
        self.assertEqual(ids, ["sub-01_ses-01", "sub-02_ses-01", "sub-03_ses-01"])
        nodes = logic.openCase(slicer.mrmlScene, root, ids[0])
        self.assertEqual(set(nodes), {"dwi", "b0", "adc", "eadc", "flair"})
        dwi = nodes["dwi"]
        self.assertEqual(dwi.GetImageData().GetDimensions(), (128, 128, 26))
        self.assertFalse(np.allclose(ijk_to_ras_affine(dwi), ijk_to_ras_affine(nodes["flair"])))
        m = vtk.vtkMatrix4x4()
        dwi.GetIJKToRASMatrix(m)
        self.assertAlmostEqual(abs(m.Determinant()), 1.75 * 1.75 * 5.0, places=3)

    def test_LinkedViews(self):
        from AISAnnotationMRML import layouts

        logic = AISAnnotationLogic()
        root = logic.writeDemo(os.path.join(tempfile.mkdtemp(), "demo"))
        nodes, info = logic.openCaseInViews(slicer.mrmlScene, root, "sub-03_ses-01")
        layoutNode = slicer.app.layoutManager().layoutLogic().GetLayoutNode()
        self.assertEqual(layoutNode.GetViewArrangement(), layouts.AIS_2X2)
        for layoutId in layouts.LAYOUTS:
            self.assertTrue(layoutNode.IsLayoutDescription(layoutId))
        for viewName, key in (("AIS-DWI", "dwi"), ("AIS-ADC", "adc"), ("AIS-eADC", "eadc"), ("AIS-FLAIR", "flair")):
            sliceWidget = slicer.app.layoutManager().sliceWidget(viewName)
            self.assertIsNotNone(sliceWidget, viewName)
            composite = sliceWidget.mrmlSliceCompositeNode()
            self.assertEqual(composite.GetBackgroundVolumeID(), nodes[key].GetID())
            self.assertTrue(composite.GetLinkedControl())
        # move the ADC view through its slice logic; the others follow through Slicer's link logic
        adcLogic = slicer.app.layoutManager().sliceWidget("AIS-ADC").sliceLogic()
        adcLogic.StartSliceOffsetInteraction()
        adcLogic.SetSliceOffset(adcLogic.GetSliceOffset() + 10.0)
        adcLogic.EndSliceOffsetInteraction()
        offset = adcLogic.GetSliceOffset()
        for viewName in ("AIS-DWI", "AIS-eADC", "AIS-FLAIR"):
            self.assertAlmostEqual(slicer.app.layoutManager().sliceWidget(viewName).sliceLogic().GetSliceOffset(),
                                   offset, places=3)
