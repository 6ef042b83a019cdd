"""The model card: what an exported segmentation model expects and what it returns (consensus R12).

A model directory holds ``model_card.json`` and the ONNX file it names. Fields (units in brackets):

- ``name``, ``version``: identify the model in the mask's provenance;
- ``file``: the ONNX file, relative to the directory;
- ``inputs``: case sequences in the model's channel order, e.g. ``["dwi", "adc"]`` (``dwi`` = b1000
  trace, ``adc`` in ×10⁻⁶ mm²/s, ``b0``, ``flair``, ``t1w``, ``t2w``);
- ``normalization``: one per input: ``{"method": "zscore"}`` (mean/std of the voxels > 0),
  ``{"method": "linear", "scale": s, "offset": o}`` (x·s + o) or ``{"method": "none"}``;
- ``spacing_mm``: the model grid's voxel size [3 floats, mm];
- ``orientation``: axis codes of the model grid (``"RAS"``, ``"LPS"``, …: where array axes 0, 1, 2 point);
- ``axis_order``: ``"xyz"`` (array axes 0, 1, 2 = the orientation's axes) or ``"zyx"`` (reversed, as
  SimpleITK / nnU-Net arrays are);
- ``patch_size``: sliding-window patch [3 ints, voxels, in ``axis_order``]; ``overlap``: fraction in [0, 1);
- ``activation``: ``"softmax"`` (over channels), ``"sigmoid"`` or ``"none"`` (already probabilities);
- ``output_channel``: the lesion channel; ``threshold``: probability at or above which a voxel is lesion;
- ``licence``, ``citation``: shown to the user and written into the provenance.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

CARD_NAME = "model_card.json"
SEQUENCES = ("dwi", "adc", "b0", "eadc", "flair", "t1w", "t2w")
AXIS_LETTERS = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    file: str
    inputs: tuple[str, ...]
    normalization: tuple[dict, ...]
    spacing_mm: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    orientation: str = "RAS"
    axis_order: str = "xyz"
    overlap: float = 0.5
    activation: str = "softmax"
    output_channel: int = 1
    threshold: float = 0.5
    licence: str = ""
    citation: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"], d["normalization"] = list(self.inputs), list(self.normalization)
        d["spacing_mm"], d["patch_size"] = list(self.spacing_mm), list(self.patch_size)
        return d


def _need(d: dict, key: str, what: str) -> Any:
    if key not in d:
        raise InputError(f"{what}: missing field {key!r}")
    return d[key]


def parse_card(d: dict, what: str = CARD_NAME) -> ModelCard:
    """Validate a card dictionary; one clear :class:`InputError` per problem."""
    if not isinstance(d, dict):
        raise InputError(f"{what}: expected a JSON object")
    known = {f for f in ModelCard.__dataclass_fields__}
    unknown = sorted(set(d) - known)
    if unknown:
        raise InputError(f"{what}: unknown field(s) {', '.join(unknown)}")
    inputs = tuple(_need(d, "inputs", what))
    if not inputs or any(s not in SEQUENCES for s in inputs):
        raise InputError(f"{what}: inputs must be a non-empty list of {', '.join(SEQUENCES)}; got {list(inputs)}")
    norm = tuple(d.get("normalization") or [{"method": "zscore"}] * len(inputs))
    if len(norm) != len(inputs):
        raise InputError(f"{what}: {len(norm)} normalization entries for {len(inputs)} inputs")
    for n in norm:
        if not isinstance(n, dict) or n.get("method") not in ("zscore", "linear", "none"):
            raise InputError(f"{what}: normalization method must be zscore, linear or none; got {n!r}")
    try:
        spacing = tuple(float(s) for s in _need(d, "spacing_mm", what))
        patch = tuple(int(s) for s in _need(d, "patch_size", what))
        overlap, threshold = float(d.get("overlap", 0.5)), float(d.get("threshold", 0.5))
        channel = int(d.get("output_channel", 1))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: spacing_mm, patch_size, overlap, threshold must be numbers ({exc})") from exc
    if len(spacing) != 3 or min(spacing) <= 0:
        raise InputError(f"{what}: spacing_mm must be 3 positive numbers, got {list(spacing)}")
    if len(patch) != 3 or min(patch) < 1:
        raise InputError(f"{what}: patch_size must be 3 positive integers, got {list(patch)}")
    if not 0 <= overlap < 1 or not 0 < threshold < 1 or channel < 0:
        raise InputError(f"{what}: need 0 ≤ overlap < 1, 0 < threshold < 1, output_channel ≥ 0")
    orient = str(d.get("orientation", "RAS")).upper()
    if len(orient) != 3 or sorted(AXIS_LETTERS[c][0] for c in orient if c in AXIS_LETTERS) != [0, 1, 2]:
        raise InputError(f"{what}: orientation must be three axis codes such as RAS or LPS, got {orient!r}")
    if d.get("axis_order", "xyz") not in ("xyz", "zyx"):
        raise InputError(f"{what}: axis_order must be xyz or zyx")
    if d.get("activation", "softmax") not in ("softmax", "sigmoid", "none"):
        raise InputError(f"{what}: activation must be softmax, sigmoid or none")
    return ModelCard(
        name=str(_need(d, "name", what)), version=str(_need(d, "version", what)), file=str(_need(d, "file", what)),
        inputs=inputs, normalization=norm, spacing_mm=spacing, patch_size=patch, orientation=orient,
        axis_order=d.get("axis_order", "xyz"), overlap=overlap, activation=d.get("activation", "softmax"),
        output_channel=channel, threshold=threshold, licence=str(d.get("licence", "")),
        citation=str(d.get("citation", "")), description=str(d.get("description", "")), extra=d.get("extra", {}))


def load_card(model_dir: Path) -> tuple[ModelCard, Path]:
    """(card, ONNX path) of a model directory."""
    model_dir = Path(model_dir)
    p = model_dir / CARD_NAME
    if not p.is_file():
        raise InputError(f"{model_dir}: no {CARD_NAME} (a model directory holds the card and the ONNX file)")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not readable JSON ({exc})") from exc
    card = parse_card(d, str(p))
    onnx_path = model_dir / card.file
    if not onnx_path.is_file():
        raise InputError(f"{p}: model file {card.file!r} not found in {model_dir}")
    return card, onnx_path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
