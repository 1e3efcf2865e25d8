"""BC data-efficiency curves of an environment's learner (`experiments/data_efficiency.py`).

  --config=configs/data_efficiency.py:reacher         10 seeds, 1 ... 32 demonstrations per task
  --config=configs/data_efficiency.py:reacher,quick   a laptop-sized run
  (env: any registered environment). The learner and the demonstrations are the
  environment's testbed defaults (`configs/testbed.py`); any field can be overridden, e.g.
  `--config.demo_noise=0` or `--config.hidden="(64,64)"`.
"""
import ml_collections

from configs import testbed


def get_config(arg: str = "reacher") -> ml_collections.ConfigDict:
  c = testbed.experiment(arg)
  c.ns = (1, 2, 4, 8, 16, 32)   # demonstrations of every task (the `uniform` curve)
  # The `per_task` curve: `per_task_ns` demonstrations of one task, `per_task_base` of every
  # other, success on that task; for each task of `per_task_tasks` (() = all). No
  # `per_task_ns`: no per-task curve.
  c.per_task_ns = (0, 1, 2, 4, 8)
  c.per_task_base = 2
  c.per_task_tasks = ()
  c.eval_episodes = 10
  c.eval_task_batch = 1         # tasks evaluated side by side (see configs/active_finetune.py)

  if c.scale == "quick":
    c.num_seeds = 3
    c.ns = (1, 2, 4, 8)
    c.per_task_ns = (0, 1, 4)
    c.per_task_tasks = (0, 3)
    c.eval_episodes = 4
    c.pretrain_steps = 1500
  return c
