"""MRML bridge: moves :mod:`AISAnnotationLib` images and masks into and out of MRML nodes.

Every function takes the ``vtkMRMLScene`` (or nodes of it) as an argument; nothing
here touches ``slicer.mrmlScene`` or any Qt class, so it runs inside Slicer and on
a bare scene from PyPI ``slicer-core`` alike.
"""
