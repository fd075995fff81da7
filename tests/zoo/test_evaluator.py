import numpy as np
import pytest

from fewstep.zoo import shapes_data as sd
from fewstep.zoo import shapes_render as sr
from fewstep.zoo.evaluator import ShapesEvaluator, alignment, check, frechet_distance, predict
from fewstep.zoo.registry import zoo_path


def _pred(objs):
    """Evaluator-style predictions for a list of (colour, shape, count, cx, cy, large)."""
    p = {
        "count": np.zeros(sd.NUM_CLASSES, int),
        "cx": np.full(sd.NUM_CLASSES, 0.5),
        "cy": np.full(sd.NUM_CLASSES, 0.5),
        "large": np.zeros(sd.NUM_CLASSES, bool),
    }
    for colour, shape, n, x, y, large in objs:
        k = sd.class_index(colour, shape)
        p["count"][k], p["cx"][k], p["cy"][k], p["large"][k] = n, x, y, large
    return p


def test_check_binds_colour_to_shape():
    spec = sd.SceneSpec("pair", (sd.Obj("red", "circle"), sd.Obj("blue", "square")))
    swapped = _pred([("red", "square", 1, 0.3, 0.5, 0), ("blue", "circle", 1, 0.7, 0.5, 0)])
    res = check(spec, swapped)
    assert res["colour"] and res["shape"] and not res["all"]
    assert check(spec, _pred([("red", "circle", 1, 0.3, 0.5, 0), ("blue", "square", 1, 0.7, 0.5, 0)]))["all"]


def test_check_relation_count_position_size():
    rel = sd.SceneSpec("relation", (sd.Obj("red", "circle"), sd.Obj("blue", "square")), relation="left of")
    assert check(rel, _pred([("red", "circle", 1, 0.2, 0.5, 0), ("blue", "square", 1, 0.8, 0.5, 0)]))["relation"]
    assert not check(rel, _pred([("red", "circle", 1, 0.8, 0.5, 0), ("blue", "square", 1, 0.2, 0.5, 0)]))["relation"]
    cnt = sd.SceneSpec("count", (sd.Obj("green", "star"),), count=3)
    assert check(cnt, _pred([("green", "star", 3, 0.5, 0.5, 0)]))["all"]
    assert not check(cnt, _pred([("green", "star", 2, 0.5, 0.5, 0)]))["all"]
    pos = sd.SceneSpec("position", (sd.Obj("green", "star"),), position="top")
    assert check(pos, _pred([("green", "star", 1, 0.5, 0.2, 0)]))["all"]
    assert not check(pos, _pred([("green", "star", 1, 0.5, 0.8, 0)]))["all"]
    size = sd.SceneSpec("single", (sd.Obj("green", "star", "large"),))
    assert check(size, _pred([("green", "star", 1, 0.5, 0.5, 1)]))["all"]
    assert not check(size, _pred([("green", "star", 1, 0.5, 0.5, 0)]))["size"]


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 1.0) == pytest.approx(8.0, rel=1e-3)


@pytest.fixture(scope="module")
def evaluator():
    return ShapesEvaluator.load(zoo_path("shapes-evaluator"))


def test_shipped_evaluator_scores_real_images_high_and_shuffled_captions_low(evaluator):
    specs = sd.eval_prompts(300)
    images = sr.reference_images(specs, seed=11)
    pred = predict(evaluator, images)
    assert alignment(specs, pred)["alignment"] >= 0.9
    shuffled = [specs[i] for i in np.random.default_rng(0).permutation(len(specs))]
    assert alignment(shuffled, pred)["alignment"] <= 0.3


def test_shipped_evaluator_fid_separates_real_from_degraded(evaluator):
    specs = sd.eval_prompts(400)
    a = predict(evaluator, sr.reference_images(specs, seed=1))["features"]
    b_images = sr.reference_images(specs, seed=2)
    b = predict(evaluator, b_images)["features"]
    noisy = np.clip(b_images + np.random.default_rng(0).normal(0, 0.15, b_images.shape), 0, 1).astype(np.float32)
    c = predict(evaluator, noisy)["features"]
    floor = frechet_distance(a, b)  # two real sets: includes the finite-sample bias
    assert frechet_distance(a, c) > 1.5 * floor


def test_missing_evaluator_weights_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        ShapesEvaluator.load(tmp_path)
