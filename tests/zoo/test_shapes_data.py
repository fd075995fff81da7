import numpy as np
import pytest

from fewstep.zoo import shapes_data as sd
from fewstep.zoo import shapes_render as sr


def test_same_seed_same_batch_and_different_seed_differs():
    a = sr.sample_batch(np.random.default_rng(7), 16)
    b = sr.sample_batch(np.random.default_rng(7), 16)
    c = sr.sample_batch(np.random.default_rng(8), 16)
    assert a.captions == b.captions
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions != c.captions


def test_images_are_rgb_32px_in_unit_range():
    b = sr.sample_batch(np.random.default_rng(0), 8)
    assert b.images.shape == (8, 32, 32, 3)
    assert b.images.dtype == np.float32
    assert b.images.min() >= 0.0 and b.images.max() <= 1.0


def test_grammar_covers_required_vocabulary():
    assert len(sd.SHAPES) >= 4 and len(sd.COLOURS) >= 6 and len(sd.SIZES) >= 2
    caps = sr.sample_batch(np.random.default_rng(1), 400).captions
    text = " ".join(caps)
    for word in ("left of", "above", "two", "three", "small", "large", "on the left", " and "):
        assert word in text, word
    assert all(len(templates) >= 3 for templates in sd.TEMPLATES.values())


def test_training_never_draws_held_out_meanings_and_eval_set_is_held_out():
    rng = np.random.default_rng(3)
    assert not any(sd.training_spec(rng).held_out() for _ in range(2000))
    specs = sd.eval_specs()
    assert all(s.held_out() for kind in specs.values() for s in kind)
    assert all(len(v) > 0 for v in specs.values())
    eval_captions = {sd.caption(s, t) for kind in specs.values() for s in kind for t in range(4)}
    train_caps = set(sr.sample_batch(np.random.default_rng(4), 3000).captions)
    assert not eval_captions & train_caps


def test_eval_prompts_are_balanced_and_fixed():
    p = sd.eval_prompts(100)
    assert p == sd.eval_prompts(100)
    kinds = [s.kind for s in p]
    assert all(kinds.count(k) == 20 for k in sd.KINDS)


@pytest.mark.parametrize("relation", sd.RELATIONS)
def test_relation_layouts_satisfy_the_caption(relation):
    rng = np.random.default_rng(5)
    spec = sd.SceneSpec("relation", (sd.Obj("red", "circle"), sd.Obj("blue", "square")), relation=relation)
    for _ in range(20):
        a, b = sr.layout_for(spec, rng).objects
        dx, dy = b.cx - a.cx, b.cy - a.cy
        need = {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[relation]
        assert need >= 8.0


def test_count_and_labels_match():
    rng = np.random.default_rng(6)
    spec = sd.SceneSpec("count", (sd.Obj("green", "triangle"),), count=3)
    lay = sr.layout_for(spec, rng)
    lab = sr.labels(lay)
    k = sd.class_index("green", "triangle")
    assert lab["count"][k] == 3 and lab["count"].sum() == 3
    img = sr.render(lay)
    green = np.all(np.abs(img - np.array(sr.RGB["green"])) < 0.02, axis=-1).sum()
    assert green > 20  # the shapes are really drawn


def test_captions_use_correct_articles():
    assert sd.caption(sd.SceneSpec("single", (sd.Obj("orange", "star"),))) == "an orange star"
    assert sd.caption(sd.SceneSpec("count", (sd.Obj("red", "circle"),), count=2)) == "two red circles"


def test_cell_labels_hold_one_object_centre_each():
    rng = np.random.default_rng(9)
    for _ in range(200):
        lay = sr.layout_for(sd.training_spec(rng), rng)
        lab = sr.labels(lay)
        cells = lab["cells"]
        assert (cells < sd.NUM_CLASSES).sum() == len(lay.objects)  # no two centres share a cell
        for o in lay.objects:
            gx, gy = int(o.cx / 32 * sr.GRID), int(o.cy / 32 * sr.GRID)
            assert cells[gy, gx] == sd.class_index(o.colour, o.shape)
            assert lab["offset"][gy, gx].min() >= 0 and lab["offset"][gy, gx].max() < 1


def test_windowed_render_equals_averaging_the_whole_supersampled_image():
    rng = np.random.default_rng(7)
    for resolution in (32, 48):
        for _ in range(50):
            lay = sr.layout_for(sd.training_spec(rng), rng)
            n, s = resolution * 4, 4
            coords = (np.arange(n) + 0.5) / s / (resolution / 32.0)
            px, py = np.meshgrid(coords, coords)
            full = np.empty((n, n, 3), np.float32)
            full[:] = sr.BACKGROUND
            for o in lay.objects:
                full[sr._mask(o.shape, o.cx, o.cy, sr.RADIUS[o.size], px, py)] = sr.RGB[o.colour]
            ref = full.reshape(resolution, s, resolution, s, 3).mean((1, 3))
            np.testing.assert_array_equal(sr.render(lay, resolution), ref)


def test_training_captions_cover_what_training_draws():
    captions = set(sd.training_captions())
    rng = np.random.default_rng(3)
    drawn = {c for _ in range(20) for c in sr.sample_batch(rng, 64).captions}
    assert drawn <= captions
    held = {sd.caption(s) for s in sd.eval_prompts(200)}
    assert not held & captions
