"""What every NN study of an environment shares: the environment, its demonstrations, its learner.

These defaults were chosen on the data-efficiency curves (`experiments/data_efficiency.py`,
docs/testbed.md): with them BC climbs from well below 0.5
success at one demonstration per task to 0.9 and more within the budgets the studies use.
`configs/data_efficiency.py` and `configs/active_finetune.py` both start from here, so a study
and the curve that justifies it always use the same learner.

- `demo_noise`: DART. The expert labels the states reached under its own actions plus
  Gaussian noise of this std, so BC learns to recover from small errors; without it, BC on
  reacher and pusher stays near zero success whatever the number of demonstrations.
- `hidden`, `learning_rate`, `bc_batch_size`, `pretrain_steps`: the MLP and its BC (optax Adam).
- `lr_decay`: the learning rate within each BC call (pre-training and every round's
  fine-tuning): `constant`, or `cosine` to zero over the call's steps (`amf.bc.DECAYS`).
- `action_std`: the Gaussian head's fixed std (enters only the importance weights).
"""
import ml_collections

ENVS = ("reacher", "pusher", "integrator")

_DEFAULTS = {
    # num_tasks is listed so that `--config.env_kwargs.num_tasks=N` can change it. Pusher has
    # 4 goals 8 cm apart: with 8 (3.4 cm apart, success radius 3 cm) a goal gains little from
    # its own demonstrations over its neighbours', so no choice of tasks could matter much.
    "reacher": dict(env_kwargs=dict(num_tasks=8), demo_noise=0.2, hidden=(128, 128),
                    action_std=0.05, pretrain_steps=3000),
    # Pusher's BC ends each call on a cosine-decayed step: with a constant step its success
    # after 3,000 steps swung by up to 0.56 between fine-tuning rounds and fine-tuning never
    # improved on round 0 (docs/results.md, "Pusher fine-tuning").
    "pusher": dict(env_kwargs=dict(num_tasks=4), demo_noise=0.2, hidden=(256, 256),
                   action_std=0.05, pretrain_steps=3000, lr_decay="cosine"),
    "integrator": dict(env_kwargs=dict(num_tasks=12, horizon=8), demo_noise=0.0,
                       hidden=(64, 64), action_std=0.02, pretrain_steps=3000),
}


def parse(arg: str) -> tuple[str, str]:
  """`"reacher,quick"` -> `("reacher", "quick")`; the scale defaults to `paper`."""
  env, _, scale = arg.partition(",")
  scale = scale or "paper"
  if env not in ENVS:
    raise ValueError(f"Unknown env {env!r}; choose one of {sorted(ENVS)}.")
  if scale not in ("quick", "paper"):
    raise ValueError(f"Unknown scale {scale!r}; choose 'quick' or 'paper'.")
  return env, scale


def get_config(env: str) -> ml_collections.ConfigDict:
  """The environment's settings and its BC learner, as fields of a study's config."""
  d = _DEFAULTS[env]
  c = ml_collections.ConfigDict()
  c.env = env
  c.env_kwargs = ml_collections.ConfigDict(d["env_kwargs"])
  c.demo_noise = d["demo_noise"]
  c.hidden = d["hidden"]
  c.action_std = d["action_std"]
  c.learning_rate = 1e-3
  c.bc_batch_size = 128
  c.lr_decay = d.get("lr_decay", "constant")
  c.pretrain_steps = d["pretrain_steps"]
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
