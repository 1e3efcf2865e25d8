"""AMF-GP on the 2-D integrator: pre-training on the first k of 12 tasks (docs/design.md §9).

`--config=configs/integrator_gp.py` is the paper's scale; `--config=configs/integrator_gp.py:quick`
a laptop-sized one. Any field can be overridden, e.g. `--config.num_seeds=3`.
"""
import ml_collections

from amf import occupancy
from configs import task_space


def get_config(scale: str = "paper") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.seed = 0                # base seed: seed s of a run is fold_in(seed, s)
  c.num_seeds = 10
  c.methods = ("amf", "uniform", "rebalancing")
  c.ks = tuple(range(1, 13))  # pre-training covers the first k tasks (the `variant` column)

  c.env = "integrator"
  c.env_kwargs = ml_collections.ConfigDict(dict(
      num_tasks=12, radius=1.0, horizon=8, max_action=0.25, init_noise=0.05,
      success_threshold=0.1))

  c.pretrain_size = 12      # demonstrations in the pre-training set, spread over the k tasks
  c.budget = 12             # N demonstrations asked for
  c.batch_size = 1          # B per round
  c.target_tasks = ()       # tasks that matter (mu uniform on them); () = all 12

  # The GP model of the expert (AMF-GP's policy is its posterior mean).
  c.gp_kernel = "rbf"        # of amf/gp_kernels.py
  c.state_scale = 0.5       # lengthscale on the state part of x = (s, phi(c))
  c.task_scale = 0.5        # lengthscale on the task features (goal positions on the unit circle)
  c.amplitude = 1.0
  c.noise = 0.1             # observation noise std of the demonstrated actions
  c.action_std = 0.1        # the policy's action noise, for the importance weights

  c.estimators = ("importance",)  # occupancy estimators; AMF runs once per estimator
  c.critic = ml_collections.ConfigDict(occupancy.Critic()._asdict())  # `learned` estimator
  c.stride = 1              # score every state of a trajectory
  c.demo_noise = 0.0        # the exact expert needs no DART
  c.eval_task_batch = 0     # all tasks side by side
  c.occupancy_samples = 2   # estimated trajectories kept per task (m)
  c.eval_episodes = 10
  c.checkpoint_every = 4    # rounds between orbax checkpoints
  c.max_runs_per_call = 0   # runs advanced at once (0: all of a variant group); bounds memory
  c.plot_ks = (1, 3, 6, 12)  # k values drawn in the curve figures
  task_space.add(c)  # finite task set by default (configs/task_space.py)

  if scale == "quick":
    c.num_seeds = 5
    c.ks = (1, 2, 3, 4, 6, 8, 10, 12)
    c.plot_ks = (1, 3, 6, 12)
  elif scale != "paper":
    raise ValueError(f"Unknown scale {scale!r}; choose 'quick' or 'paper'.")
  return c
