"""SD3.5-Flash distillation: trajectory guidance and distribution matching (timestep sharing).

`fewstep.distill.run.distill` writes a student; the configs are in `fewstep.distill.config`
(importing this package does not import torch)."""
