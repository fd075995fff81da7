"""Broken model directories get a named error and exit code 2 from every command that loads a
model (compile, eval, distill), never a traceback; pickle-only weights are refused before loading."""

import json
import shutil

import pytest

from fewstep.cli import main


def _broken(tiny_pipeline_dir, tmp_path, case):
    model = tmp_path / "model"
    shutil.copytree(tiny_pipeline_dir, model)
    weights = model / "transformer" / "diffusion_pytorch_model.safetensors"
    if case == "corrupt model_index.json":
        (model / "model_index.json").write_text("{not json")
    elif case == "model_index.json not an object":
        (model / "model_index.json").write_text(json.dumps(["a", "list"]))
    elif case == "truncated safetensors":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif case == "garbage safetensors":
        weights.write_bytes(b"\x00" * 64)
    elif case == "pickle-only weights":
        weights.unlink()
        (model / "transformer" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04cos\nsystem\n.")
    elif case == "missing component folder":
        shutil.rmtree(model / "vae")
    return model


CASES = {
    "corrupt model_index.json": "not valid JSON",
    "model_index.json not an object": "not a JSON object",
    "truncated safetensors": "not a readable safetensors file",
    "garbage safetensors": "not a readable safetensors file",
    "pickle-only weights": "only pickle weights",
    "missing component folder": "cannot load this pipeline",
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("command", ["compile", "eval"])
def test_broken_model_dirs_are_named_errors(tiny_pipeline_dir, tmp_path, capsys, case, command):
    model = _broken(tiny_pipeline_dir, tmp_path, case)
    args = {
        "compile": ["compile", str(model), "-o", str(tmp_path / "b"), "-t", "onnxruntime-cpu"],
        "eval": ["eval", str(model), "--num-images", "8", "--steps", "2"],
    }[command]
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert CASES[case] in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()  # nothing half-written
