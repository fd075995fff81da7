import pytest
import torch

from fewstep.distill.config import DistributionMatching, FlashConfig, SplitTimestep, TrajectoryGuidance
from fewstep.distill.run import distill
from fewstep.distill.split import branch_steps, merge, select_ratio
from fewstep.student import student_info


def test_branches_partition_the_student_steps():
    assert branch_steps([1.0, 0.9, 0.75, 0.5, 0.0], 0.5) == ([0, 1, 2], [3])
    with pytest.raises(ValueError, match="leave a branch empty"):
        branch_steps([1.0, 0.9, 0.0], 0.5)


def test_merge_interpolates_weights():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    m = merge(a, b, 0.3)
    torch.testing.assert_close(m.weight, 0.3 * a.weight + 0.7 * b.weight)
    torch.testing.assert_close(merge(a, b, 1.0).weight, a.weight)


def test_split_timestep_records_the_chosen_ratio(tiny_pipeline_dir, tmp_path):
    cfg = FlashConfig(
        steps=2,
        shift=1.0,
        trajectory_guidance=TrajectoryGuidance(iterations=2, num_prompts=6, teacher_steps=4, batch=4),
        distribution_matching=DistributionMatching(iterations=2, critic_ratio=1, batch=4),
        split_timestep=SplitTimestep(enabled=True, iterations=2, boundary=0.6, ratios=(0.0, 0.5, 1.0), eval_images=8),
    )
    out = distill(tiny_pipeline_dir, cfg, tmp_path / "s", progress=False)
    rec = student_info(out)["split_timestep"]
    assert rec["branch_a_steps"] == [0] and rec["branch_b_steps"] == [1]
    assert set(rec["scores"]) == {"0.0", "0.5", "1.0"} and rec["ratio"] in (0.0, 0.5, 1.0)
    assert (tmp_path / ".s.work" / "split-a" / "losses.csv").exists()


def test_ratio_is_best_alignment_among_those_with_near_lowest_fid():
    scores = {
        0.0: {"alignment": 0.60, "fid": 16.0},
        0.5: {"alignment": 0.62, "fid": 16.2},
        1.0: {"alignment": 0.65, "fid": 20.0},  # best alignment, but its FID is 25 % worse
    }
    assert select_ratio(scores, fid_guard=0.02) == 0.5
    assert select_ratio(scores, fid_guard=0.5) == 1.0
    assert select_ratio(scores, fid_guard=0.0) == 0.0
    tie = {0.0: {"alignment": 0.6, "fid": 1.0}, 0.3: {"alignment": 0.6, "fid": 1.0}}
    assert select_ratio(tie, fid_guard=0.02) == 0.3  # the paper's 3:7 breaks ties


def test_a_teacher_carrying_a_caption_evaluator_scores_the_ratios_and_hands_it_on(
    tiny_pipeline_dir, tiny_caption_evaluator, caption_folder, tmp_path
):
    import shutil

    from fewstep.evaluation import evaluate
    from fewstep.families import family_for
    from fewstep.families.captioned import EVALUATOR_DIR
    from fewstep.sampling import GenerationConfig

    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_pipeline_dir, teacher)
    shutil.copytree(tiny_caption_evaluator, teacher / EVALUATOR_DIR)
    cfg = FlashConfig(
        steps=2,
        shift=1.0,
        data=f"imagefolder:{caption_folder}",
        trajectory_guidance=TrajectoryGuidance(iterations=2, num_prompts=6, teacher_steps=4, batch=4),
        distribution_matching=DistributionMatching(iterations=2, critic_ratio=1, batch=4),
        split_timestep=SplitTimestep(enabled=True, iterations=2, boundary=0.6, ratios=(0.0, 1.0), eval_images=8),
    )
    out = distill(teacher, cfg, tmp_path / "s", progress=False)
    rec = student_info(out)["split_timestep"]
    assert set(rec["scores"]) == {"0.0", "1.0"} and rec["scored_by"] == "CaptionEvaluation"
    assert (out / EVALUATOR_DIR / "config.json").read_text() == (teacher / EVALUATOR_DIR / "config.json").read_text()
    assert family_for(out).name == "captioned"
    scores = evaluate(out, GenerationConfig(steps=2, num_images=6, progress=False))
    assert {"fid", "fid_real", "alignment", "concept_recall"} <= set(scores) and scores["images"] == 6
