"""The configured pre-annotation models (``serve --model DIR``, ``python -m AISAnnotationWeb --model DIR``):
checked at start, offered by name and version (no path), run by the source a user chooses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from AISAnnotationLib.errors import InputError
from aistest import REPO

pytest.importorskip("onnx", reason="the test extra provides onnx")
pytest.importorskip("onnxruntime", reason="the [ai] extra provides onnxruntime")

from test_ai_plugin import synthetic_case, write_model_dir  # noqa: E402,F401  (synthetic_case: fixture)

from AISAnnotationLib.ai import combine_results, model_preannotate  # noqa: E402
from AISAnnotationLib.ai.catalog import (  # noqa: E402
    SOURCES,
    find_choice,
    model_choices,
    preannotate_with,
    tool_parameters,
)


def test_choices_are_keyed_by_name_and_version_and_checked(tmp_path) -> None:
    a = write_model_dir(tmp_path / "a")
    b = write_model_dir(tmp_path / "b", version="0.2")
    choices = model_choices([a, b])
    assert [m.key for m in choices] == ["tiny-lesion 0.1", "tiny-lesion 0.2"]
    row = choices[1].row()
    assert row["name"] == "tiny-lesion" and row["version"] == "0.2" and row["licence"] == "CC0-1.0"
    assert str(tmp_path) not in json.dumps(row)  # a user sees no path
    assert find_choice(choices, "tiny-lesion 0.2").directory == b
    with pytest.raises(InputError, match="no model 'other 1'.*tiny-lesion 0.1, tiny-lesion 0.2"):
        find_choice(choices, "other 1")
    with pytest.raises(InputError, match="configured twice"):
        model_choices([a, write_model_dir(tmp_path / "copy")])
    with pytest.raises(InputError, match="no model_card.json"):
        model_choices([tmp_path / "missing"])


def test_sources_run_the_library_paths(synthetic_case, tmp_path) -> None:  # noqa: F811
    from AISAnnotationLib.preannotate import PreannotationContext, PreannotationParameters

    choice = model_choices([write_model_dir(tmp_path / "m")])[0]
    params = PreannotationParameters()
    ctx = PreannotationContext.from_case(synthetic_case, params)
    classical = preannotate_with(synthetic_case, ctx, params, "classical")
    assert np.array_equal(classical.mask, ctx.compute(params).mask)
    model = preannotate_with(synthetic_case, ctx, params, "model", choice, device="cpu")
    direct = model_preannotate(synthetic_case, choice.directory, device="cpu", context=ctx)
    assert np.array_equal(model.mask, direct.mask)
    assert [c.to_dict() for c in model.candidates] == [c.to_dict() for c in direct.candidates]
    both = preannotate_with(synthetic_case, ctx, params, "combined", choice, device="cpu")
    ref = combine_results(ctx.compute(params), direct, ctx)
    assert np.array_equal(both.mask, ref.mask) and [c.source for c in both.candidates] == [c.source for c in ref.candidates]
    with pytest.raises(InputError, match="needs a model"):
        preannotate_with(synthetic_case, ctx, params, "model", None)
    with pytest.raises(InputError, match="unknown pre-annotation source"):
        preannotate_with(synthetic_case, ctx, params, "guess", choice)
    assert list(SOURCES) == ["classical", "model", "combined"]
    used = tool_parameters(600, "combined", both)
    assert used["ADCThreshold"] == 600.0 and used["PreannotationSource"] == "combined"
    assert used["PreannotationModel"]["sha256"] == direct.provenance["sha256"]
    assert "PreannotationModel" not in tool_parameters(620, "classical", classical)
    assert "PreannotationSource" not in tool_parameters(620)


@pytest.mark.parametrize("argv, says", [
    (["-m", "AISAnnotationLib", "serve", "{root}", "--state", "{tmp}/state", "--web", "--port", "0", "--model", "{bad}"],
     "model_card.json: missing field 'inputs'"),
    (["-m", "AISAnnotationLib", "serve", "{root}", "--state", "{tmp}/state", "--port", "0", "--model", "{good}"],
     "give --web"),
    (["-m", "AISAnnotationWeb", "{root}", "--rater", "r01", "--role", "annotator", "--model", "{bad}"],
     "model_card.json: missing field 'inputs'"),
])
def test_a_bad_model_folder_is_one_line_and_exit_2(demo_root, tmp_path, argv, says) -> None:
    good = write_model_dir(tmp_path / "good")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model_card.json").write_text(json.dumps({"name": "x"}))
    args = [a.format(root=demo_root, tmp=tmp_path, bad=bad, good=good) for a in argv]
    env = dict(os.environ, PYTHONPATH=str(REPO / "AISAnnotation"))
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert says in lines[0], lines[0]
