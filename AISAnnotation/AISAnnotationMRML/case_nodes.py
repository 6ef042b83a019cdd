"""A loaded :class:`AISAnnotationLib.case.Case` as MRML volume nodes in a given scene."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from AISAnnotationLib.case import DISPLAY_ORDER, Case

from .segmentations import mask_to_segmentation_node
from .volumes import image_to_volume_node

NODE_NAMES = {
    "dwi": "DWI b1000", "b0": "DWI b0", "adc": "ADC", "eadc": "eADC",
    "flair": "FLAIR", "t1w": "T1WI", "t2w": "T2WI",
}


def node_name(case: Case, key: str) -> str:
    return f"{case.case_id} {NODE_NAMES.get(key, key)}"


def load_case_nodes(scene: Any, case: Case, keys: Optional[list[str]] = None) -> dict[str, Any]:
    """Add one scalar volume node per sequence of ``case`` (native grids, nothing resampled).

    Returns sequence key → node. Each node carries attributes ``AIS.case`` and
    ``AIS.sequence`` so the module can find them again.
    """
    nodes: dict[str, Any] = {}
    for key in keys or [k for k in DISPLAY_ORDER if k in case.images]:
        node = image_to_volume_node(scene, case.images[key], node_name(case, key))
        node.SetAttribute("AIS.case", case.case_id)
        node.SetAttribute("AIS.sequence", key)
        if case.images[key].meta.get("AISDerived"):
            node.SetAttribute("AIS.derived", "1")
        nodes[key] = node
    return nodes


def add_mask_segmentation(scene: Any, mask: np.ndarray, dwi_node: Any, name: str = "Lesions",
                          segment_name: str = "lesion") -> tuple[Any, str]:
    """A segmentation node on the DWI geometry holding ``mask``."""
    return mask_to_segmentation_node(scene, mask, dwi_node, segment_name=segment_name, name=name)
