"""Per-task success of an environment's scripted expert (`experiments/experts.py`).

  --config=configs/experts.py:reacher         32 episodes per task, 256 continuous tasks
  --config=configs/experts.py:pusher,quick    a laptop-sized check
  (env: any registered environment). The environment's settings are the testbed's
  (`configs/testbed.py`) and can be overridden, e.g. `--config.env_kwargs.horizon=60`.
"""
import ml_collections

from configs import testbed


def get_config(arg: str = "reacher") -> ml_collections.ConfigDict:
  env, scale = testbed.parse(arg)
  c = ml_collections.ConfigDict()
  c.scale = scale
  c.env = env
  c.env_kwargs = testbed.get_config(env).env_kwargs
  c.seed = 0
  c.episodes = 32            # episodes per task of the finite set
  c.continuous_tasks = 256   # tasks from the continuous sampler, one episode each
  c.min_success = 0.95       # the bar every discrete task and the continuous set must clear
  if scale == "quick":
    c.episodes = 8
    c.continuous_tasks = 64
  return c
