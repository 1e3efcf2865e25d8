"""Multi-task environments, registered by name."""
from amf import registry
from amf.envs.base import MultiTaskEnv, State
from amf.envs.integrator import Integrator
from amf.envs.pusher import Pusher
from amf.envs.reacher import Reacher

ENVS = {"integrator": Integrator, "reacher": Reacher, "pusher": Pusher}


def make(name: str, **kwargs) -> MultiTaskEnv:
  """Builds environment `name` with keyword settings (e.g. from a config)."""
  return registry.lookup(ENVS, name, "environment")(**kwargs)
