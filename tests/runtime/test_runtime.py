import json
import subprocess
import sys

import numpy as np
import torch

from fewstep.runtime.noise import initial_noise
from fewstep.runtime.text import PromptTokenizer, TokenizerSpec
from fewstep.sampling import GenerationConfig, generate, sample_torch
from fewstep.sd3_pipeline import load_pipeline


def test_noise_convention_is_per_image():
    a = initial_noise(5, 3, (4, 2, 2))
    assert np.array_equal(a[1], initial_noise(6, 1, (4, 2, 2))[0])
    assert a.dtype == np.float32 and not np.array_equal(a[0], a[1])


def test_runtime_tokenizers_match_transformers(tiny_pipeline_dir, tmp_path):
    pipe = load_pipeline(tiny_pipeline_dir)
    prompts = ["a red circle left of a blue square", "", "Two  GREEN triangles, " * 6]
    for attr in ("tokenizer", "tokenizer_2", "tokenizer_3"):
        tok = getattr(pipe, attr)
        tok.save_pretrained(str(tmp_path / attr))
        length = pipe.tokenizer.model_max_length
        mine = PromptTokenizer(tmp_path / attr, TokenizerSpec(attr, length, str(tok.pad_token)))(prompts)
        ref = tok(prompts, padding="max_length", max_length=length, truncation=True, return_tensors="np").input_ids
        assert np.array_equal(mine, ref), attr


def test_fewstep_sampler_equals_the_diffusers_pipeline_call(tiny_pipeline_dir):
    pipe = load_pipeline(tiny_pipeline_dir)
    prompts = ["a red circle", "two blue squares"]
    cfg = GenerationConfig(steps=3, guidance=2.5, seed=1, progress=False)
    ref = generate(pipe, prompts, cfg)  # diffusers StableDiffusion3Pipeline.__call__
    noise = torch.from_numpy(initial_noise(1, 2, (4, 8, 8)))
    mine = sample_torch(pipe, prompts, noise, cfg)
    assert np.abs(mine - ref).max() < 1e-5
    # interval guidance changes the result, and (0, 1) is plain CFG
    full = sample_torch(pipe, prompts, noise, GenerationConfig(steps=3, guidance=2.5, guidance_interval=(0.0, 1.0)))
    part = sample_torch(pipe, prompts, noise, GenerationConfig(steps=3, guidance=2.5, guidance_interval=(0.0, 0.5)))
    assert np.abs(full - ref).max() < 1e-5 and np.abs(part - ref).max() > 1e-3


def test_generate_cli_runs_without_torch(built_bundles, tmp_path):
    bundle = built_bundles["onnxruntime-cpu"][0]
    code = (
        "import sys, json; from typer.testing import CliRunner; from fewstep.cli import app; "
        f"r = CliRunner().invoke(app, ['generate', {str(bundle)!r}, 'two green triangles', '-n', '2', "
        f"'-o', {str(tmp_path / 'img.png')!r}]); "
        "print(json.dumps([r.exit_code, r.output, [m for m in ('torch', 'diffusers', 'transformers') "
        "if m in sys.modules]]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    code_, output, heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert code_ == 0, output
    assert heavy == []
    from PIL import Image

    images = [np.asarray(Image.open(tmp_path / f"img-{i}.png")) for i in range(2)]
    assert images[0].shape == (32, 32, 3) and not np.array_equal(images[0], images[1])
