import pytest
import torch

from fewstep.distill.config import FlashConfig
from fewstep.distill.dmd import dm_direction, dm_loss, generator_point
from fewstep.distill.schedule import student_sample, student_timesteps, teacher_trajectory
from fewstep.distill.trainer import conditioning
from fewstep.distill.trajectory_guidance import trajectory_guidance_loss
from fewstep.sd3_pipeline import load_pipeline


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir):
    return load_pipeline(tiny_pipeline_dir)


def test_default_timesteps_are_shifted_and_end_at_zero():
    assert student_timesteps(FlashConfig(steps=4, shift=3.0)) == pytest.approx([1.0, 0.9, 0.75, 0.5, 0.0])
    assert student_timesteps(FlashConfig(steps=2, shift=1.0)) == pytest.approx([1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="timesteps"):
        FlashConfig(steps=2, timesteps=[1.0, 0.7, 0.2])
    with pytest.raises(ValueError, match="decrease"):
        FlashConfig(steps=2, timesteps=[1.0, 1.2])


def test_teacher_trajectory_on_the_student_grid_equals_student_sampler(pipe):
    ts = student_timesteps(FlashConfig(steps=4, shift=3.0))
    c = conditioning(pipe, ["a red circle", "two blue stars"], t5_free=False)
    noise = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    uncond = (c.uncond[0].expand(2, -1, -1), c.uncond[1].expand(2, -1))
    # guidance 1 = plain conditional velocity; a 4-step teacher grid with the same shift = the student grid.
    states = teacher_trajectory(pipe.transformer, noise, ts, c.teacher, uncond, 1.0, 4, 3.0)
    assert states.shape == (2, 5, 4, 8, 8)
    torch.testing.assert_close(states[:, 0], noise)
    final = student_sample(pipe.transformer, noise, ts, c.teacher)
    torch.testing.assert_close(states[:, -1], final, atol=1e-5, rtol=1e-5)
    step = torch.tensor([0, 2])
    loss = trajectory_guidance_loss(pipe.transformer, states, step, ts, c.teacher)
    assert loss.item() < 1e-9  # the teacher itself makes exactly these jumps


def test_dm_direction_vanishes_when_fake_equals_real(pipe):
    c = conditioning(pipe, ["a red circle"], t5_free=False)
    x = torch.randn(1, 4, 8, 8)
    t = torch.tensor([0.6])
    g = dm_direction(pipe.transformer, pipe.transformer, x, t, c.teacher, c.uncond, 1.0)
    assert g.abs().max().item() < 1e-5
    g = dm_direction(pipe.transformer, pipe.transformer, x, t, c.teacher, c.uncond, 4.0)
    assert g.abs().max().item() > 1e-4 and torch.isfinite(g).all()


def test_dm_loss_gradient_is_g():
    x = torch.randn(2, 3, requires_grad=True)
    g = torch.randn(2, 3)
    dm_loss(x, g).backward()
    torch.testing.assert_close(x.grad, g / x.numel())


def test_timestep_sharing_stays_on_the_student_trajectory(pipe):
    ts = student_timesteps(FlashConfig(steps=4))
    c = conditioning(pipe, ["a red circle"], t5_free=False)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    x, t, _ = generator_point(pipe.transformer, noise, 1, ts, c.teacher, True, 3.0)
    assert t.item() == pytest.approx(ts[2])
    # Moving along the student's own velocity to T_2 is the next student state.
    expected = student_sample(pipe.transformer, noise, ts, c.teacher, stop=2)
    torch.testing.assert_close(x, expected, atol=1e-5, rtol=1e-5)
    x2, t2, _ = generator_point(pipe.transformer, noise, 1, ts, c.teacher, False, 3.0)
    assert not torch.allclose(x2, expected, atol=1e-3)  # re-noising leaves the trajectory


def test_t5_free_student_conditioning_zeroes_t5_only(pipe):
    c = conditioning(pipe, ["a red circle"], t5_free=True)
    assert torch.count_nonzero(c.student[0][:, 16:]) == 0
    assert torch.count_nonzero(c.teacher[0][:, 16:]) > 0
    torch.testing.assert_close(c.student[0][:, :16], c.teacher[0][:, :16])


def test_cfg_interval_guides_only_inside_the_interval():
    from fewstep.distill.schedule import cfg_velocity

    class Toy(torch.nn.Module):  # velocity = conditioning value, so v_u = 0 and v_c = 1
        def forward(self, hidden_states, timestep, encoder_hidden_states, pooled_projections):
            out = encoder_hidden_states.mean(dim=(1, 2)).view(-1, 1, 1, 1).expand_as(hidden_states)
            return type("O", (), {"sample": out})()

    x = torch.zeros(3, 1, 2, 2)
    cond = (torch.ones(3, 2, 2), torch.ones(3, 2))
    uncond = (torch.zeros(3, 2, 2), torch.zeros(3, 2))
    t = torch.tensor([0.95, 0.5, 0.05])
    v = cfg_velocity(Toy(), x, t, cond, uncond, 3.0, interval=(0.1, 0.8))
    assert v[:, 0, 0, 0].tolist() == pytest.approx([1.0, 3.0, 1.0])  # only t = 0.5 is guided
    assert cfg_velocity(Toy(), x, t, cond, uncond, 3.0)[:, 0, 0, 0].tolist() == pytest.approx([3.0] * 3)
