"""AI plug-in: a trained segmentation model (ONNX + model card) as a pre-annotation source (R12).

ONNX Runtime is imported only when a model runs (extra ``[ai]``).
"""

from __future__ import annotations

from .card import CARD_NAME, ModelCard, load_card, parse_card
from .plugin import combine_results, model_preannotate, run_model

__all__ = ["CARD_NAME", "ModelCard", "combine_results", "load_card", "model_preannotate", "parse_card",
           "run_model"]
