"""Hidden module that registers the "AIS threshold" segment editor effect at start-up (Slicer's template way)."""

from __future__ import annotations

import os

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest


class SegmentEditorAISThreshold(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "SegmentEditorAISThreshold"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["Segmentations"]
        self.parent.contributors = ["AISAnnotation contributors"]
        self.parent.hidden = True
        self.parent.helpText = ("Registers the 'AIS threshold' segment editor effect: ADC < 620×10⁻⁶ mm²/s "
                                "pre-annotation refined on DWI (expert consensus on AIS MRI annotation, 2025).")
        self.parent.acknowledgementText = "Built on the 3D Slicer segment editor."
        slicer.app.connect("startupCompleted()", self.registerEditorEffect)

    def registerEditorEffect(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as qSlicerSegmentationsEditorEffects

        instance = qSlicerSegmentationsEditorEffects.qSlicerSegmentEditorScriptedEffect(None)
        effectFilename = os.path.join(os.path.dirname(__file__), self.__class__.__name__ + "Lib/SegmentEditorEffect.py")
        instance.setPythonSource(effectFilename.replace("\\", "/"))
        instance.self().register()


class SegmentEditorAISThresholdTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer: the effect is registered and pre-annotates a synthetic DWI/ADC pair."""

    def setUp(self):
        slicer.mrmlScene.Clear(0)

    def runTest(self):
        self.setUp()
        self.test_effect_applies_candidate_on_dwi_grid()

    def test_effect_applies_candidate_on_dwi_grid(self):
        import numpy as np

        from AISAnnotationLib.image import Image
        from AISAnnotationMRML.segmentations import segment_to_mask
        from AISAnnotationMRML.volumes import image_to_volume_node

        rng = np.random.default_rng(0)
        shape = (40, 40, 20)
        aff = np.diag([2.0, 2.0, 2.0, 1.0])
        dwi = rng.uniform(1, 5, shape).astype(np.float32)
        dwi[2:-2, 2:-2, 2:-2] = 100.0
        dwi[10:14, 10:14, 8:11] = 200.0
        adc = np.full(shape, 800.0, dtype=np.float32)
        adc[10:14, 10:14, 8:11] = 400.0
        dwiNode = image_to_volume_node(slicer.mrmlScene, Image(dwi, aff), "DWI")
        adcNode = image_to_volume_node(slicer.mrmlScene, Image(adc, aff), "ADC")
        seg = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        seg.CreateDefaultDisplayNodes()
        seg.SetReferenceImageGeometryParameterFromVolumeNode(dwiNode)
        sid = seg.GetSegmentation().AddEmptySegment("lesion")

        widget = slicer.qMRMLSegmentEditorWidget()
        widget.setMRMLScene(slicer.mrmlScene)
        editorNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        widget.setMRMLSegmentEditorNode(editorNode)
        widget.setSegmentationNode(seg)
        widget.setSourceVolumeNode(dwiNode)
        widget.setCurrentSegmentID(sid)
        widget.setActiveEffectByName("AIS threshold")
        effect = widget.activeEffect()
        self.assertIsNotNone(effect, "AIS threshold effect is not registered")
        effect.setParameter("AdcVolumeNodeID", adcNode.GetID())
        effect.setParameter("BrainErodeMm", 0.0)
        effect.setParameter("MinVolumeMm3", 0.0)
        effect.self().onApply()
        got = segment_to_mask(seg, sid, dwiNode)
        self.assertEqual(int(got.sum()), 48)
        widget.setActiveEffectByName("")
        self.delayDisplay("AIS threshold effect test passed")
