"""Task spaces: AMF's targets and mu, one small object per kind of space, by name.

`space(env, cfg) -> TaskSpace` (`cfg`: an `amf.active.LoopConfig`):

- `finite`: the targets are the finite task set, mu its weights `target_mass` on
  `target_tasks` (uniform on every task when empty).
- `continuous`: the targets are `num_targets` tasks drawn from mu, uniform on `target_region`
  of the task box C (all of C when empty), once per seed at the loop's `init`; they are both
  what is evaluated and AMF's targets, and every method of a seed shares them.

The loop reads only the object, so a new kind of task space is a function here.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from amf import registry
from amf.envs.base import MultiTaskEnv
from amf.proposals import TaskBatch


class TaskSpace(NamedTuple):
  mu: jax.Array                                  # (T,) weights of the target tasks
  ids: jax.Array                                 # (T,) their finite-set ids (-1: off the set)
  draw: Callable[[jax.Array, int], TaskBatch]    # (key, n) -> n tasks drawn from mu
  targets: Callable[[jax.Array], jax.Array]      # key -> (T, P) the target tasks of a seed
  # The candidates a scored strategy chooses among are the targets themselves (the finite
  # set scored whole): one occupancy estimate and one covariance then serve both.
  shared: bool


def target_weights(num_tasks: int, target_tasks=(), mass=()) -> jax.Array:
  """mu on the finite set: `mass` (uniform if empty) on `target_tasks` (every task if empty)."""
  if any(t >= num_tasks for t in target_tasks):
    raise ValueError(f"target_tasks {tuple(target_tasks)} has ids beyond {num_tasks} tasks.")
  if not target_tasks:
    return jnp.full((num_tasks,), 1.0 / num_tasks)
  mass = jnp.asarray(mass, jnp.float32) if len(mass) else 1.0
  support = jnp.zeros(num_tasks).at[jnp.asarray(target_tasks, jnp.int32)].set(mass)
  return support / support.sum()


def candidates(env: MultiTaskEnv, num: int) -> TaskBatch:
  """The tasks the `grid` proposal scores: the finite set (`num` 0), else a product grid of
  `num` tasks over the whole task box (every task parameter), off the set."""
  if not num:
    return TaskBatch(env.tasks, jnp.arange(env.num_tasks, dtype=jnp.int32))
  return TaskBatch(env.task_space.grid(num), _off_the_set(num))


def _off_the_set(n: int) -> jax.Array:
  return jnp.full((n,), -1, jnp.int32)


def finite(env: MultiTaskEnv, cfg) -> TaskSpace:
  num_tasks = env.num_tasks
  mu = target_weights(num_tasks, cfg.target_tasks, cfg.target_mass)

  def draw(key: jax.Array, n: int) -> TaskBatch:
    ids = jax.random.choice(key, num_tasks, (n,), p=mu)
    return TaskBatch(env.tasks[ids], ids.astype(jnp.int32))

  return TaskSpace(mu, jnp.arange(num_tasks, dtype=jnp.int32), draw, lambda key: env.tasks,
                   shared=cfg.proposal == "grid" and not cfg.num_candidates)


def continuous(env: MultiTaskEnv, cfg) -> TaskSpace:
  t = cfg.num_targets
  region = env.task_space.region(cfg.target_region) if cfg.target_region else env.task_space
  return TaskSpace(jnp.full((t,), 1.0 / t), _off_the_set(t),
                   lambda key, n: TaskBatch(region.sample(key, n), _off_the_set(n)),
                   lambda key: region.sample(key, t), shared=False)


SPACES = {"finite": finite, "continuous": continuous}


def get(name: str):
  return registry.lookup(SPACES, name, "task space")
