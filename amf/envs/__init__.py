"""Multi-task environments, registered by name with their testbeds (`amf.envs.registry`).

A new environment is a module that ends with its `register(...)` call, imported here.
"""
from amf.envs.base import MultiTaskEnv, State
from amf.envs.registry import ENVS, Learner, Loop, Testbed, make, register, testbed
# Imported for their registrations, in the order studies list their processes in.
from amf.envs import integrator, reacher, pusher, metaworld  # pylint: disable=g-bad-import-order
from amf.envs.reacher import Reacher
