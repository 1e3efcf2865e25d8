"""How far a task's demonstrations transfer (`experiments/transfer.py`).

  --config=configs/transfer.py:reacher          10 seeds, 2 of every other task, 0 or 8 of one
  --config=configs/transfer.py:reacher,quick    a laptop-sized run
  (env: any registered environment). The learner and demonstrations are the testbed's
  (`configs/testbed.py`), as in the data-efficiency curves.
"""
import ml_collections

from amf import envs
from configs import testbed



def get_config(arg: str = "reacher") -> ml_collections.ConfigDict:
  c = testbed.experiment(arg)
  c.n = 8                        # demonstrations of the source task (none in the other arm)
  c.base = 2                     # demonstrations of every other finite task (0: none)
  c.sources = envs.testbed(c.env).transfer_sources  # finite-set ids, away from the box's edges
  # Offsets of the evaluated tasks from a source, along one task parameter at a time, as
  # fractions of that parameter's range (tasks outside the box are skipped).
  c.offsets = (0.0, 0.015, 0.03, 0.06, 0.125, 0.25, 0.5)
  c.eval_episodes = 10
  c.eval_task_batch = 0          # every evaluated task side by side
  if c.scale == "quick":
    c.num_seeds = 3
    c.offsets = (0.0, 0.06, 0.25)
    c.eval_episodes = 4
    c.pretrain_steps = 1500
  return c
