"""What every NN study of an environment shares: the environment, its demonstrations, its learner.

The defaults are the environment's registered testbed (`amf.envs.registry`, at the end of its
module), chosen on its data-efficiency curves (`experiments/data_efficiency.py`,
docs/testbed.md): with them BC climbs from well below 0.5 success at one demonstration per
task to 0.9 and more within the budgets the studies use. `configs/data_efficiency.py` and
`configs/active_finetune.py` both start from here, so a study and the curve that justifies it
always use the same learner.

- `demo_noise`: DART. The expert labels the states reached under its own actions plus
  Gaussian noise of this std, so BC learns to recover from small errors.
- `hidden`, `learning_rate`, `bc_batch_size`, `pretrain_steps`: the MLP and its BC (optax Adam).
- `lr_decay`: the learning rate within each BC call (pre-training and every round's
  fine-tuning): `constant`, or `cosine` to zero over the call's steps (`amf.bc.DECAYS`).
- `action_std`: the Gaussian head's fixed std (enters only the importance weights).
"""
import ml_collections

from amf import envs


def parse(arg: str) -> tuple[str, str]:
  """`"reacher,quick"` -> `("reacher", "quick")`; the scale defaults to `paper`."""
  env, _, scale = arg.partition(",")
  scale = scale or "paper"
  if env not in envs.ENVS:
    raise ValueError(f"Unknown env {env!r}; choose one of {sorted(envs.ENVS)}.")
  if scale not in ("quick", "paper"):
    raise ValueError(f"Unknown scale {scale!r}; choose 'quick' or 'paper'.")
  return env, scale


def get_config(env: str) -> ml_collections.ConfigDict:
  """The environment's settings and its BC learner, as fields of a study's config."""
  tb = envs.testbed(env)
  c = ml_collections.ConfigDict()
  c.env = env
  c.env_kwargs = ml_collections.ConfigDict(dict(tb.env_kwargs))
  c.demo_noise = tb.learner.demo_noise
  c.hidden = tb.learner.hidden
  c.action_std = tb.learner.action_std
  c.head = "fixed_std"
  c.learning_rate = 1e-3
  c.bc_batch_size = 128
  c.lr_decay = tb.learner.lr_decay
  c.pretrain_steps = tb.learner.pretrain_steps
  return c


def experiment(arg: str) -> ml_collections.ConfigDict:
  """The testbed's config for `arg` (`"reacher"`, `"pusher,quick"`, ...) with the fields every
  experiment over seeds starts from: its scale, a base seed and 10 seeds."""
  env, scale = parse(arg)
  c = get_config(env)
  c.scale = scale
  c.seed = 0                    # base seed: seed s is fold_in(seed, s)
  c.num_seeds = 10
  return c
