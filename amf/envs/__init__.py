"""Multi-task environments, registered by name."""
from amf.envs.base import MultiTaskEnv, State
from amf.envs.integrator import Integrator

ENVS = {"integrator": Integrator}


def make(name: str, **kwargs) -> MultiTaskEnv:
  """Builds environment `name` with keyword settings (e.g. from a config)."""
  if name not in ENVS:
    raise ValueError(f"Unknown environment {name!r}; choose one of {sorted(ENVS)}.")
  return ENVS[name](**kwargs)
