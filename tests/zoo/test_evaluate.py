import numpy as np

from fewstep.sampling import GenerationConfig, generate
from fewstep.sd3_pipeline import load_pipeline
from fewstep.zoo import shapes_data as sd
from fewstep.zoo import shapes_render as sr
from fewstep.zoo.scoring import score


def test_images_do_not_depend_on_batch_size(tiny_pipeline_dir):
    pipe = load_pipeline(tiny_pipeline_dir)
    prompts = [sd.caption(s) for s in sd.eval_prompts(6)]
    a = generate(pipe, prompts, GenerationConfig(steps=2, batch=6, progress=False))
    b = generate(pipe, prompts, GenerationConfig(steps=2, batch=4, progress=False))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_real_images_score_as_real():
    specs = sd.eval_prompts(200)
    images = sr.reference_images(specs, seed=99)
    result = score(images, specs)
    assert result["alignment"] > 0.9
    assert result["fid"] < 3 * result["fid_real"] + 1e-3


def test_nan_images_fail_loudly():
    import pytest

    specs = sd.eval_prompts(10)
    images = sr.reference_images(specs, seed=1)
    images[0, 0, 0, 0] = np.nan
    with pytest.raises(FloatingPointError):
        score(images, specs)
