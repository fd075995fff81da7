import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from fewstep import training as train_mod
from fewstep.families import open_source
from fewstep.zoo import train_loop as zoo_loop
from fewstep.zoo.train import TrainConfig, train_all


def _cfg(out, tiny_family, **kw):
    base = dict(
        out=out,
        decoder_steps=2,
        evaluator_steps=3,
        vae_steps=3,
        teacher_steps=4,
        checkpoint_every=2,
        batch=8,
        progress=False,
        compile=False,
        family=tiny_family,
    )
    base.update(kw)
    return TrainConfig(**base)


def _weights(path):
    return load_file(str(path / "transformer" / "diffusion_pytorch_model.safetensors"))


def test_training_resumes_exactly_after_a_kill(tmp_path, tiny_family, monkeypatch):
    straight = train_all(_cfg(tmp_path / "a", tiny_family))
    real_save = train_mod.save_checkpoint

    def save_then_die(root, step, *args, **kw):
        out = real_save(root, step, *args, **kw)
        if "teacher" in str(root) and step == 2:
            raise KeyboardInterrupt("killed mid-training")
        return out

    monkeypatch.setattr(train_mod, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_all(_cfg(tmp_path / "b", tiny_family))
    assert not (tmp_path / "b" / "transformer").exists()
    monkeypatch.setattr(train_mod, "save_checkpoint", real_save)
    resumed = train_all(_cfg(tmp_path / "b", tiny_family))
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    losses = (tmp_path / "b" / "work" / "teacher" / "losses.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in losses] == [0, 1, 2, 3]
    assert all(float(line.split(",")[2]) > 0 for line in losses)  # seconds per step, for throughput


def test_trained_pipeline_loads_with_calibrated_latents(tmp_path, tiny_family):
    out = train_all(_cfg(tmp_path / "c", tiny_family))
    vae_cfg = json.loads((out / "vae" / "config.json").read_text())
    assert vae_cfg["scaling_factor"] != 1.0 and vae_cfg["shift_factor"] != 0.0
    assert (tmp_path / "c" / "evaluator" / "model.safetensors").exists()


def test_imagefolder_source_and_training(tmp_path, tiny_family):
    folder = tmp_path / "data"
    folder.mkdir()
    rows = []
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255), (0, 255, 0)]):
        Image.new("RGB", (48, 40), colour).save(folder / f"{i}.png")
        rows.append(json.dumps({"file_name": f"{i}.png", "text": f"a plain image number {i}"}))
    (folder / "metadata.jsonl").write_text("\n".join(rows))
    src = open_source(f"imagefolder:{folder}", 32)
    batch = src.sample(np.random.default_rng(0), 5)
    assert batch.images.shape == (5, 32, 32, 3) and len(batch.captions) == 5
    with pytest.warns(UserWarning, match="no caption evaluator: .* held-out images"):
        out = train_all(_cfg(tmp_path / "d", tiny_family, data=f"imagefolder:{folder}"))
    assert (out / "model_index.json").exists()
    assert not (tmp_path / "d" / "evaluator").exists()  # the shapes evaluator is for the shapes domain only
    assert not (out / "fewstep_evaluator").exists()  # three images hold out too few for a caption evaluator


def test_bad_data_sources_are_named(tmp_path):
    with pytest.raises(ValueError, match="allowed: shapes, imagefolder"):
        open_source("coco")
    with pytest.raises(FileNotFoundError, match="metadata.jsonl"):
        open_source(f"imagefolder:{tmp_path}")
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "missing.png", "text": "x"}))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        open_source(f"imagefolder:{tmp_path}")


def test_decoder_finetune_keeps_the_encoder(tmp_path, tiny_family):
    train_all(_cfg(tmp_path / "e", tiny_family))
    first = load_file(str(tmp_path / "e" / "vae" / "diffusion_pytorch_model.safetensors"))
    final = load_file(str(tmp_path / "e" / "pipeline" / "vae" / "diffusion_pytorch_model.safetensors"))
    enc = [k for k in first if k.startswith("encoder.")]
    dec = [k for k in first if k.startswith("decoder.")]
    assert enc and all(torch.equal(first[k], final[k]) for k in enc)
    assert any(not torch.equal(first[k], final[k]) for k in dec)


def test_compiled_forward_falls_back_to_eager_when_compiling_fails(monkeypatch):
    model = torch.nn.Linear(4, 2)

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(zoo_loop.shutil, "which", lambda name: "/usr/bin/g++")
    forward = zoo_loop.compiled_forward(model, enabled=True)
    forward.compiled = broken
    x = torch.randn(3, 4)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        out = forward(x)
    torch.testing.assert_close(out, model(x))
    assert forward.compiled is None  # reported once, eager from then on
    assert zoo_loop.compiled_forward(model, enabled=False) is model
    monkeypatch.setattr(zoo_loop.shutil, "which", lambda name: None)
    assert zoo_loop.compiled_forward(model, enabled=True) is model
