"""The pre-annotation sources a tool offers: classical, a trained model (from a configured list), or both.

A data manager names the model directories once (``ais-annotate serve --model DIR``, repeated, or
``python -m AISAnnotationWeb --model DIR``); each is checked at start (card + ONNX file) and offered
to users by its key (``name version`` from the card), never by path, so a user choosing a model
cannot make the tool read another folder. :func:`preannotate_with` runs the chosen source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import InputError
from .card import ModelCard, load_card

#: Source key → what the user reads (the same three as the Slicer effect's "Candidates" choice).
SOURCES = {"classical": "Classical (ADC + DWI)", "model": "Trained model (ONNX)",
           "combined": "Classical + trained model"}


@dataclass(frozen=True)
class ModelChoice:
    """A configured model: its key (``name version``), directory and card."""

    key: str
    directory: Path
    card: ModelCard

    def row(self) -> dict[str, Any]:
        """What a user may see of the model (no path): key, name, version, inputs, licence, citation."""
        c = self.card
        return {"key": self.key, "name": c.name, "version": c.version, "inputs": list(c.inputs),
                "licence": c.licence, "citation": c.citation, "description": c.description,
                "title": f"{c.name} {c.version} ({', '.join(c.inputs)})"}


def model_choices(directories: Sequence[Any]) -> list[ModelChoice]:
    """Check each model directory (one :class:`InputError` naming the folder and the problem) and key it."""
    out: list[ModelChoice] = []
    for d in directories:
        card, _ = load_card(Path(d))
        key = f"{card.name} {card.version}"
        if any(m.key == key for m in out):
            raise InputError(f"{d}: model {key} is configured twice (names and versions must differ)")
        out.append(ModelChoice(key, Path(d), card))
    return out


def find_choice(choices: Sequence[ModelChoice], key: str) -> ModelChoice:
    for m in choices:
        if m.key == key:
            return m
    offered = ", ".join(m.key for m in choices) or "none configured"
    raise InputError(f"no model {key!r} (offered: {offered})")


def preannotate_with(case: Any, context: Any, params: Any, source: str = "classical",
                     model: Optional[ModelChoice] = None, device: str = "auto") -> Any:
    """The pre-annotation of ``source`` (:data:`SOURCES`) on ``case``: the classical result of ``context``
    with ``params``, the ``model``'s (probability as confidence, provenance), or both combined."""
    if source not in SOURCES:
        raise InputError(f"unknown pre-annotation source {source!r} (one of {', '.join(SOURCES)})")
    if source == "classical":
        return context.compute(params)
    if model is None:
        raise InputError(f"'{SOURCES[source]}' needs a model: choose one of the configured models")
    from .plugin import combine_results, model_preannotate

    result = model_preannotate(case, model.directory, device=device, context=context)
    return combine_results(context.compute(params), result, context) if source == "combined" else result


def tool_parameters(adc_threshold: float, source: Optional[str] = None, result: Any = None) -> dict[str, Any]:
    """The ``AISParameters`` of a submission made with the pre-annotation tool: the ADC threshold the rater
    set (×10⁻⁶ mm²/s) and, once candidates were applied, their source and the model's identity (name,
    version, file, SHA-256), so an AI-assisted mask says so (R12)."""
    out: dict[str, Any] = {"ADCThreshold": float(adc_threshold), "ADCThresholdUnit": "1e-6 mm2/s",
                           "ADCThresholdSource": "set by the rater in the tool"}
    if source is not None:
        out["PreannotationSource"] = source
        prov = getattr(result, "provenance", None) or {}
        if source != "classical" and prov:
            out["PreannotationModel"] = {k: prov.get(k) for k in ("name", "version", "file", "sha256")}
    return out
