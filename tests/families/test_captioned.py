"""The caption evaluator: vocabulary, held-out split, training, scores that move the right way,
the family seam (pipelines carrying one, students inheriting it) and the CLI's refusals."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from caption_helpers import parse, scene, write_folder
from fewstep.families import carry_family_files, family_for, open_source
from fewstep.families.captioned import EVALUATOR_DIR, CaptionEvaluator
from fewstep.families.captioned.evaluation import CaptionEvaluation
from fewstep.families.captioned.train import EvaluatorConfig, TooFewHeldOut, train_caption_evaluator
from fewstep.families.captioned.vocab import build_vocabulary, concepts
from fewstep.families.sd3 import ImageFolderSource, is_held_out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("captioned") / "data", n=600, filler=0.5)


@pytest.fixture(scope="module")
def evaluator_dir(folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluator")
    cfg = EvaluatorConfig(steps=250, batch=64, width=8, features=32, lr=3e-3, progress=False, checkpoint_every=100)
    return train_caption_evaluator(folder, 16, root / "ev", cfg, root / "work")


def test_concepts_and_vocabulary_are_deterministic():
    assert concepts("A red circle to the LEFT of a blue square") == [
        "red", "circle", "left", "blue", "square", "red circle", "circle left", "left blue", "blue square",
    ]  # fmt: skip
    captions = ["a red square on the left", "a blue square on the left", "a red square on the right"] * 3
    vocab = build_vocabulary(captions, min_count=3)
    assert vocab == build_vocabulary(list(reversed(captions)), min_count=3)
    assert "square" not in vocab  # in every caption: says nothing about one image
    assert vocab[:2] == ["left", "red"]  # most frequent first, ties alphabetical
    assert "blue square" in vocab and "a" not in vocab


def test_held_out_split_is_stable_and_disjoint(folder):
    train = ImageFolderSource(folder, 16, split="train")
    held = ImageFolderSource(folder, 16, split="held_out")
    every = ImageFolderSource(folder, 16, split="all")
    assert len(train.captions) + len(held.captions) == len(every.captions) == 600
    assert 35 <= len(held.captions) <= 90
    assert is_held_out("img0000.png") == is_held_out("img0000.png")
    assert open_source(f"imagefolder:{folder}", 16).captions == train.captions  # training never sees held-out images
    with pytest.raises(ValueError, match="split 'test': allowed: train, held_out, all"):
        ImageFolderSource(folder, 16, split="test")


def test_evaluator_scores_real_images_high_and_wrong_ones_low(folder, evaluator_dir):
    ev = CaptionEvaluator.load(evaluator_dir)
    assert {"red", "left", "red square", "square left"} <= set(ev.vocabulary)
    real = ev.info["real"]
    assert real["alignment"] >= 0.9 and real["concept_recall"] >= 0.95
    # calibration on half the real held-out images: the filler no image shows is not checked
    assert "picture" in ev.unchecked and "picture" in ev.info["calibration"]["unchecked"]
    assert not {"red", "left", "red square"} & set(ev.unchecked)
    assert 0 < ev.thresholds["red"] < 1 and real["images"] == len(ev.held_out) // 2
    evaluation = CaptionEvaluation(evaluator_dir)
    prompts, specs = evaluation.held_out(60)
    assert prompts == specs and prompts[: len(ev.held_out)] == ev.held_out[:60]
    rng = np.random.default_rng(7)

    def render(colour_of, side_of):
        out = []
        for p in prompts:
            colour, side = parse(p)
            out.append(scene(colour_of(colour), side_of(side), rng))
        return np.stack(out).astype(np.float32) / 255

    right = evaluation.score(render(lambda c: c, lambda s: s), specs)
    other = {"red": "green", "green": "blue", "blue": "red"}
    wrong_colour = evaluation.score(render(other.get, lambda s: s), specs)
    flipped = evaluation.score(render(lambda c: c, {"left": "right", "right": "left"}.get), specs)
    noise = evaluation.score(rng.random((60, 16, 16, 3)).astype(np.float32), specs)
    assert right["alignment"] >= 0.9
    assert wrong_colour["alignment"] <= 0.1 and flipped["alignment"] <= 0.1
    assert wrong_colour["per_category"]["word"] < right["per_category"]["word"]
    assert right["fid"] < 0.5 * noise["fid"] and right["fid"] < 0.5 * wrong_colour["fid"]
    assert right["fid_real"] >= 0 and right["alignment_real"] == real["alignment"]
    upsized = np.repeat(np.repeat(render(lambda c: c, lambda s: s), 2, 1), 2, 2)  # 32 px: resized to the evaluator's
    assert evaluation.score(upsized, specs)["alignment"] >= 0.85


def test_evaluator_files_are_safetensors_and_json_only(evaluator_dir):
    assert sorted(p.name for p in evaluator_dir.iterdir()) == [
        "config.json",
        "model.safetensors",
        "reference.safetensors",
    ]
    (broken := evaluator_dir.parent / "broken").mkdir()
    shutil.copy(evaluator_dir / "config.json", broken / "config.json")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        CaptionEvaluator.load(broken)


def test_too_small_folder_is_refused_by_count(tmp_path):
    small = write_folder(tmp_path / "small", n=30)
    with pytest.raises(TooFewHeldOut, match=r"held-out images .* at least 20"):
        train_caption_evaluator(small, 16, tmp_path / "ev", EvaluatorConfig(steps=1, progress=False), tmp_path / "w")
    assert not (tmp_path / "ev").exists()


def test_pipelines_carrying_an_evaluator_are_the_captioned_family(tmp_path, tiny_pipeline_dir, evaluator_dir):
    pipe = tmp_path / "pipe"
    shutil.copytree(tiny_pipeline_dir, pipe)
    assert family_for(pipe).name != "captioned"
    shutil.copytree(evaluator_dir, pipe / EVALUATOR_DIR)
    family = family_for(pipe)
    assert family.name == "captioned"
    assert family.held_out_prompts(3, pipe) == CaptionEvaluator.load(evaluator_dir).held_out[:3]
    assert len(family.training_prompts(5, 0, pipe)) == 5
    assert family.evaluation(pipe).inputs() == {"evaluator": pipe / EVALUATOR_DIR}
    student = tmp_path / "student"
    student.mkdir()
    assert carry_family_files(pipe, student) == [EVALUATOR_DIR]
    assert family_for(student).name == "captioned"
    with pytest.raises(ValueError, match="fewstep_evaluator"):
        family.evaluation(None)


def test_cli_trains_attaches_and_refuses(tmp_path, folder, tiny_pipeline_dir):
    from fewstep.cli import app

    runner = CliRunner()
    pipe = tmp_path / "pipe"
    shutil.copytree(tiny_pipeline_dir, pipe)
    args = ["evaluator", "train", "--data", f"imagefolder:{folder}", "-o", str(tmp_path / "ev"), "--resolution", "16",
            "--steps", "150", "--batch", "32", "--min-count", "2", "--attach", str(pipe), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["attached"] == str(pipe / EVALUATOR_DIR) and summary["concepts"] > 0
    assert family_for(pipe).name == "captioned"
    scored = runner.invoke(
        app, ["eval", str(pipe), "--steps", "2", "--num-images", "8", "--grid", str(tmp_path / "g.png")]
    )
    assert scored.exit_code == 0, scored.output
    assert "caption concepts found" in scored.output and "real held-out images: alignment" in scored.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "fewstep_evaluator exists; pass --force to replace it" in again.output
    unattached = runner.invoke(app, args[:-3])
    assert unattached.exit_code == 2 and "already holds an evaluator; pass --force" in unattached.output
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    calibrated = runner.invoke(app, ["evaluator", "calibrate", str(tmp_path / "ev"), "--data", f"imagefolder:{folder}"])
    assert calibrated.exit_code == 0 and "concepts checked" in calibrated.output, calibrated.output
    bad_data = runner.invoke(app, ["evaluator", "calibrate", str(tmp_path / "ev"), "--data", "shapes"])
    assert bad_data.exit_code == 2 and "allowed: imagefolder:PATH" in bad_data.output
    bad = runner.invoke(app, ["evaluator", "train", "--data", "shapes", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "allowed: imagefolder:PATH" in bad.output
    not_pipe = runner.invoke(app, [*args[:6], "--attach", str(tmp_path)])
    assert not_pipe.exit_code == 2 and "not a pipeline directory" in not_pipe.output
