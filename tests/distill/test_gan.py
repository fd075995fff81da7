import numpy as np
import torch

from fewstep.distill.gan import DiscriminatorHeads, capture_blocks, discriminate, discriminator_loss, generator_adv_loss
from fewstep.distill.trainer import conditioning
from fewstep.pipelines import load_pipeline


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
