"""Images ⇄ ``vtkMRMLScalarVolumeNode`` (IJK→RAS from the NIfTI affine, voxel for voxel)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from AISAnnotationLib.image import Image


def matrix_from_affine(affine: np.ndarray) -> vtk.vtkMatrix4x4:
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(affine[r, c]))
    return m


def affine_from_matrix(m: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)], dtype=float)


def ijk_to_ras_affine(node: Any) -> np.ndarray:
    """The node's IJK→RAS matrix as a numpy 4×4."""
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return affine_from_matrix(m)


def image_data_from_array(array: np.ndarray) -> vtk.vtkImageData:
    """[i, j, k] numpy array → vtkImageData (i fastest, origin 0, spacing 1, as MRML expects)."""
    arr = np.asarray(array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    img = vtk.vtkImageData()
    img.SetDimensions(*[int(n) for n in arr.shape[:3]])
    flat = np.ascontiguousarray(arr.ravel(order="F"))
    vtk_arr = numpy_support.numpy_to_vtk(flat, deep=True)
    vtk_arr.SetName("ImageScalars")
    img.GetPointData().SetScalars(vtk_arr)
    return img


def array_from_image_data(img: vtk.vtkImageData) -> np.ndarray:
    """vtkImageData → [i, j, k] numpy array (a copy)."""
    dims = img.GetDimensions()
    flat = numpy_support.vtk_to_numpy(img.GetPointData().GetScalars())
    return np.array(flat.reshape(dims, order="F"))


def image_to_volume_node(scene: Any, image: Image, name: str = "", node: Optional[Any] = None,
                         labelmap: bool = False) -> Any:
    """Add (or update) a scalar / labelmap volume node showing ``image`` in ``scene``.

    The node's IJK→RAS matrix equals ``image.affine``, so every voxel lands at the
    RAS point the NIfTI affine gives. A display node is attached.
    """
    if image.array.ndim != 3:
        raise ValueError(f"{name or image.name}: a volume node needs a 3D image, got {image.shape}")
    cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    if node is None:
        node = scene.AddNewNodeByClass(cls, name or image.name or "volume")
    node.SetIJKToRASMatrix(matrix_from_affine(image.affine))
    node.SetAndObserveImageData(image_data_from_array(image.array))
    if node.GetDisplayNode() is None:
        dcls = "vtkMRMLLabelMapVolumeDisplayNode" if labelmap else "vtkMRMLScalarVolumeDisplayNode"
        dn = scene.AddNewNodeByClass(dcls)
        if not labelmap:
            dn.SetAutoWindowLevel(True)
        gray = scene.GetFirstNodeByName("Grey") if not labelmap else None
        if gray is not None:
            dn.SetAndObserveColorNodeID(gray.GetID())
        node.SetAndObserveDisplayNodeID(dn.GetID())
    return node


def volume_node_to_image(node: Any, name: str = "") -> Image:
    """``vtkMRMLScalarVolumeNode`` → :class:`Image` ([i, j, k] array, IJK→RAS affine)."""
    return Image(array=array_from_image_data(node.GetImageData()), affine=ijk_to_ras_affine(node),
                 name=name or node.GetName())


def find_or_add(scene: Any, cls: str, name: str) -> Any:
    """First node of ``cls`` called ``name`` in ``scene``, created when missing."""
    nodes = scene.GetNodesByClassByName(cls, name)
    node = nodes.GetItemAsObject(0) if nodes.GetNumberOfItems() else None
    return node if node is not None else scene.AddNewNodeByClass(cls, name)


__all__ = [
    "array_from_image_data", "image_data_from_array", "image_to_volume_node", "volume_node_to_image",
    "matrix_from_affine", "affine_from_matrix", "ijk_to_ras_affine", "find_or_add", "slicer",
]
