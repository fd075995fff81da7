import numpy as np
import torch

from fewstep.distill.gan import DiscriminatorHeads, capture_blocks, discriminate, discriminator_loss, generator_adv_loss
from fewstep.distill.trainer import conditioning
from fewstep.sd3_pipeline import load_pipeline


def test_heads_read_block_features_and_gradients_reach_the_input(tiny_pipeline_dir):
    pipe = load_pipeline(tiny_pipeline_dir)
    tr = pipe.transformer
    dim = tr.config.num_attention_heads * tr.config.attention_head_dim
    heads = DiscriminatorHeads(dim, (0,))
    c = conditioning(pipe, ["a red circle", "a blue star"], t5_free=False)
    x0 = torch.randn(2, 4, 8, 8, requires_grad=True)
    logits = discriminate(tr, heads, x0, torch.tensor([0.5, 0.5]), c.teacher)
    assert logits.shape == (2,)
    generator_adv_loss(logits).backward()
    assert x0.grad is not None and x0.grad.abs().sum() > 0
    with capture_blocks(tr, (0,)) as feats:
        tr(
            hidden_states=x0.detach(),
            timestep=torch.tensor([500.0, 500.0]),
            encoder_hidden_states=c.teacher[0],
            pooled_projections=c.teacher[1],
        )
    assert len(feats) == 1 and feats[0].shape == (2, 16, dim)  # 8x8 latents, patch 2 -> 16 image tokens


def test_losses_and_reinit():
    fake, real = torch.tensor([5.0, 5.0]), torch.tensor([-5.0])
    assert discriminator_loss(fake, real) > 9.0  # a fooled discriminator pays
    assert discriminator_loss(-fake, -real) < 0.02
    heads = DiscriminatorHeads(8, (0, 1))
    before = [p.clone() for p in heads.parameters()]
    assert heads.maybe_reinit(1.0, np.random.default_rng(0)) == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, heads.parameters()))
    assert heads.maybe_reinit(0.0, np.random.default_rng(0)) == 0


def test_real_data_samples_are_conditioned_on_their_own_captions(tiny_pipeline_dir):
    """A conditional discriminator must see each real image under its own caption."""
    import copy

    from fewstep.distill.config import GAN, DistributionMatching, FlashConfig
    from fewstep.distill.trainer import DistillRun
    from fewstep.distill.trajectories import Trajectories, latent_shape
    from fewstep.sd3_pipeline import encode_prompts

    pipe = load_pipeline(tiny_pipeline_dir)
    captions = ["a red circle", "a red circle", "a red circle"]
    traj = Trajectories(torch.zeros(3, 3, *latent_shape(pipe)), captions, [1.0, 0.75, 0.0])
    cfg = FlashConfig(steps=2, distribution_matching=DistributionMatching(gan=GAN(real="data")))
    run = DistillRun(pipe, traj, cfg)
    rng = copy.deepcopy(run.rng)
    t_cond = conditioning(pipe, captions, t5_free=False).teacher
    x, cond = run._real(torch.arange(3), t_cond)
    drawn = run.source.sample(rng, 3).captions
    assert x.shape == traj.states[:, -1].shape
    want = encode_prompts(pipe, drawn)
    torch.testing.assert_close(cond[0], want[0])
    torch.testing.assert_close(cond[1], want[1])
    assert drawn != captions and not torch.allclose(cond[0], t_cond[0])
