"""The interface every multi-task environment shares.

A task is a vector of task parameters `c` (e.g. a goal angle). An environment turns `c` into
task features `phi(c)` the policy sees, resets with a given task, steps, scores success, and
ships an expert. Everything is a pure function of arrays so rollouts `vmap` over tasks and
episodes and `jit` as one program. States are brax's `State`, so brax environments fit as is.
"""
import abc

import jax
import jax.numpy as jnp
from brax.envs.base import State

__all__ = ["MultiTaskEnv", "State", "polar", "sample_polar"]


def polar(task: jax.Array) -> jax.Array:
  """The point at (angle, radius) = `task[..., :2]`, for goals placed around a centre."""
  return task[..., 1:2] * jnp.stack([jnp.cos(task[..., 0]), jnp.sin(task[..., 0])], -1)


def sample_polar(key: jax.Array, num: int, angle_range, radius_range) -> jax.Array:
  """`num` tasks (angle, radius), each uniform in its range."""
  k1, k2 = jax.random.split(key)
  angle = jax.random.uniform(k1, (num,), minval=angle_range[0], maxval=angle_range[1])
  radius = jax.random.uniform(k2, (num,), minval=radius_range[0], maxval=radius_range[1])
  return jnp.stack([angle, radius], -1)


class MultiTaskEnv(abc.ABC):
  """A multi-task environment with a finite task set, a continuous task sampler and an expert.

  Attributes (set by subclasses):
    horizon: episode length `H`.
    observation_size, action_size: sizes of the flat observation and action.
    task_feature_size: size of `phi(c)`.
    tasks: `(K, P)` array, the finite task set (task parameters, one row per task).
  """

  horizon: int
  observation_size: int
  action_size: int
  task_feature_size: int
  tasks: jax.Array

  @property
  def num_tasks(self) -> int:
    return self.tasks.shape[0]

  @abc.abstractmethod
  def task_features(self, task: jax.Array) -> jax.Array:
    """`phi(c)`: the features of task parameters `task` (shape `(P,)`)."""

  @abc.abstractmethod
  def sample_tasks(self, key: jax.Array, num: int) -> jax.Array:
    """`num` task parameters from the continuous task space, shape `(num, P)`."""

  @abc.abstractmethod
  def reset(self, key: jax.Array, task: jax.Array) -> State:
    """Initial state of an episode of task `task`; `state.info['task']` holds the task."""

  @abc.abstractmethod
  def step(self, state: State, action: jax.Array) -> State:
    """One step; `state.reward` is the environment's own reward for it."""

  @abc.abstractmethod
  def success(self, state: State) -> jax.Array:
    """Whether `state`, taken as the final state of an episode, solves its task (bool)."""

  @abc.abstractmethod
  def expert(self, state: State) -> jax.Array:
    """The expert's (deterministic) action in `state` for the task in `state.info['task']`."""
