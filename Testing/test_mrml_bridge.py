"""MRML bridge on a bare vtkMRMLScene from slicer-core (scene passed in explicitly)."""

from __future__ import annotations

import numpy as np
import pytest

from AISAnnotationLib import bids
from AISAnnotationLib.io import read_image
from aistest import ISLES_SES, ISLES_SUB

pytest.importorskip("slicer", reason="slicer-core is not installed (pip install '.[test]')")

from AISAnnotationMRML.case_nodes import load_case_nodes  # noqa: E402
from AISAnnotationMRML.segmentations import mask_to_segmentation_node, segment_to_mask, set_segment_mask  # noqa: E402
from AISAnnotationMRML.volumes import image_to_volume_node, volume_node_to_image  # noqa: E402


def _node_world(node, ijk) -> np.ndarray:
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array(m.MultiplyPoint([float(ijk[0]), float(ijk[1]), float(ijk[2]), 1.0])[:3])


def test_case_volumes_map_voxels_to_the_nifti_world_points(scene, isles_bids, isles_case):
    nodes = load_case_nodes(scene, isles_case)
    assert set(nodes) == {"dwi", "adc", "eadc", "flair"}
    for key, node in nodes.items():
        assert node.IsA("vtkMRMLScalarVolumeNode")
        assert node.GetAttribute("AIS.sequence") == key
    mask_p = bids.lesion_mask_path(isles_bids, ISLES_SUB, ISLES_SES, desc=bids.REFERENCE_DESC)
    lesion_voxel = tuple(int(v) for v in np.argwhere(read_image(mask_p).array > 0)[0])
    nifti = read_image(isles_case.files["dwi"])
    for ijk in [(0, 0, 0), (111, 0, 72), (56, 60, 30), lesion_voxel]:
        want = nifti.affine @ np.array([*ijk, 1.0])
        np.testing.assert_allclose(_node_world(nodes["dwi"], ijk), want[:3], atol=1e-6)
        # and the value stored at that voxel is the file's value there
        arr = volume_node_to_image(nodes["dwi"]).array
        assert arr[ijk] == pytest.approx(float(nifti.array[ijk]))
    flair_file = read_image(isles_case.files["flair"])
    for ijk in [(0, 0, 0), (511, 300, 28)]:
        np.testing.assert_allclose(_node_world(nodes["flair"], ijk), (flair_file.affine @ [*ijk, 1.0])[:3], atol=1e-6)
    assert nodes["eadc"].GetAttribute("AIS.derived") == "1"


def test_mask_round_trip_is_bit_identical(scene, isles_bids, isles_case):
    dwi_node = image_to_volume_node(scene, isles_case.reference, "dwi")
    mask_p = bids.lesion_mask_path(isles_bids, ISLES_SUB, ISLES_SES, desc=bids.REFERENCE_DESC)
    mask = read_image(mask_p).array > 0
    seg, sid = mask_to_segmentation_node(scene, mask, dwi_node)
    assert seg.IsA("vtkMRMLSegmentationNode")
    back = segment_to_mask(seg, sid, dwi_node)
    assert back.dtype == bool and back.shape == mask.shape
    assert np.array_equal(back, mask)


@pytest.mark.parametrize("shape", [(7, 5, 3), (1, 1, 1)])
def test_small_masks_round_trip(scene, shape):
    from AISAnnotationLib.image import Image

    rng = np.random.default_rng(1)
    aff = np.array([[0, -1.5, 0, 10], [2.0, 0, 0, -3], [0, 0, 3.0, 7], [0, 0, 0, 1]])
    ref = image_to_volume_node(scene, Image(rng.random(shape).astype(np.float32), aff), "ref")
    for m in (rng.random(shape) > 0.5, np.zeros(shape, bool), np.ones(shape, bool)):
        seg, sid = mask_to_segmentation_node(scene, m, ref)
        assert np.array_equal(segment_to_mask(seg, sid, ref), m)
        m2 = ~m
        set_segment_mask(seg, m2, ref, segment_id=sid)
        assert np.array_equal(segment_to_mask(seg, sid, ref), m2)
