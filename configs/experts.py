"""Per-task success of an environment's scripted expert (`experiments/experts.py`).

Pick the environment with `--config.env=reacher` (or `pusher`, `integrator`); its settings
default to the environment's own and can be overridden, e.g. `--config.env_kwargs.horizon=60`.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.env = "reacher"
  c.env_kwargs = ml_collections.ConfigDict()  # constructor settings; empty = the env's defaults
  c.seed = 0
  c.episodes = 32            # episodes per task of the finite set
  c.continuous_tasks = 256   # tasks from the continuous sampler, one episode each
  c.min_success = 0.95       # the bar every discrete task and the continuous set must clear
  return c
