"""The interface every multi-task environment shares.

A task is a vector of task parameters `c` (e.g. a goal angle) in a task space `C`, a box of
parameters (`TaskBox`). An environment turns `c` into task features `phi(c)` the policy sees,
resets with a given task, steps, scores success, and ships an expert. Its finite task set is
one grid over `C` (`grid`). Everything is a pure function of arrays so rollouts `vmap` over
tasks and episodes and `jit` as one program. States are brax's `State`, so brax environments
fit as is.
"""
import abc
from typing import NamedTuple

import jax
import jax.numpy as jnp
from brax.envs.base import State

__all__ = ["MultiTaskEnv", "State", "TaskBox", "polar"]


def brax_sizes(env) -> tuple[int, int]:
  """`(observation size, action size)` of a brax environment. Brax's `observation_size` runs
  `reset` op by op (hundreds of small compilations: docs/speed.md); its shape is all we need."""
  return jax.eval_shape(env.reset, jax.random.PRNGKey(0)).obs.shape[-1], env.action_size


def polar(task: jax.Array) -> jax.Array:
  """The point at (angle, radius) = `task[..., :2]`, for goals placed around a centre."""
  return task[..., 1:2] * jnp.stack([jnp.cos(task[..., 0]), jnp.sin(task[..., 0])], -1)


class TaskBox(NamedTuple):
  """A box of task parameters `low <= c <= high`; `periodic` dimensions wrap (an angle).

  The task space `C` of an environment, or a sub-region of it (a target distribution `mu` is
  uniform on one). Continuous task search works in the unit cube (`to_unit` / `from_unit`), so
  one step size suits angles and distances alike.
  """
  low: tuple[float, ...]
  high: tuple[float, ...]
  periodic: tuple[bool, ...]

  @property
  def size(self) -> int:
    return len(self.low)

  def sample(self, key: jax.Array, num: int) -> jax.Array:
    """`num` tasks uniform in the box, shape `(num, P)`."""
    return self.from_unit(jax.random.uniform(key, (num, self.size)))

  def grid(self, num: int) -> jax.Array:
    """`num` tasks on a product grid over the whole box, shape `(num, P)`.

    The counts per parameter multiply to `num` and are as even as its factors allow, the
    larger on earlier parameters (8 over (angle, radius): 4 x 2). A periodic parameter's
    points start at `low`, a period / count apart; the others sit at the centres of equal
    cells, so every grid point has a share of the box around it.
    """
    counts, rest = [], num
    for left in range(self.size, 0, -1):
      count = max(d for d in range(1, rest + 1) if rest % d == 0 and d ** left <= rest)
      counts.append(count)
      rest //= count
    axes = [(jnp.arange(n) + (0.0 if periodic else 0.5)) / n
            for n, periodic in zip(sorted(counts, reverse=True), self.periodic)]
    unit = jnp.stack([a.ravel() for a in jnp.meshgrid(*axes, indexing="ij")], -1)
    return self.from_unit(unit)

  def to_unit(self, tasks: jax.Array) -> jax.Array:
    low, high = jnp.asarray(self.low), jnp.asarray(self.high)
    return (tasks - low) / (high - low)

  def from_unit(self, unit: jax.Array) -> jax.Array:
    low, high = jnp.asarray(self.low), jnp.asarray(self.high)
    return low + unit * (high - low)

  def project(self, tasks: jax.Array) -> jax.Array:
    """The nearest tasks in the box: periodic dimensions wrap, the others are clipped."""
    unit = self.to_unit(tasks)
    unit = jnp.where(jnp.asarray(self.periodic), jnp.mod(unit, 1.0), jnp.clip(unit, 0.0, 1.0))
    return self.from_unit(unit)

  def contains(self, tasks: jax.Array, tol: float = 1e-5) -> jax.Array:
    """Whether each task lies in the box (up to `tol` of each dimension's extent)."""
    unit = self.to_unit(tasks)
    return jnp.all((unit >= -tol) & (unit <= 1 + tol), axis=-1)

  def region(self, bounds) -> "TaskBox":
    """The sub-box with `bounds` = ((low, high), ...) per dimension; refuses one outside."""
    if len(bounds) != self.size:
      raise ValueError(f"A region needs (low, high) for each of the {self.size} task "
                       f"parameters, got {tuple(bounds)}.")
    for d, (lo, hi) in enumerate(bounds):
      if not self.low[d] <= lo <= hi <= self.high[d]:
        raise ValueError(f"Region bounds {tuple(bounds)} leave the task space: parameter {d} "
                         f"must satisfy {self.low[d]} <= low <= high <= {self.high[d]}.")
    # A strict sub-range of a periodic dimension no longer wraps.
    periodic = tuple(p and (lo, hi) == (self.low[d], self.high[d])
                     for d, (p, (lo, hi)) in enumerate(zip(self.periodic, bounds)))
    return TaskBox(tuple(float(lo) for lo, _ in bounds),
                   tuple(float(hi) for _, hi in bounds), periodic)


class MultiTaskEnv(abc.ABC):
  """A multi-task environment with a finite task set, a continuous task sampler and an expert.

  Attributes (set by subclasses):
    horizon: episode length `H`.
    observation_size, action_size: sizes of the flat observation and action.
    task_feature_size: size of `phi(c)`.
    task_space: the `TaskBox` of all task parameters `C`.
    tasks: `(K, P)` array, the finite task set (task parameters, one row per task):
      `grid(K)`.
  """

  horizon: int
  observation_size: int
  action_size: int
  task_feature_size: int
  task_space: TaskBox
  tasks: jax.Array

  @property
  def num_tasks(self) -> int:
    return self.tasks.shape[0]

  @abc.abstractmethod
  def task_features(self, task: jax.Array) -> jax.Array:
    """`phi(c)`: the features of task parameters `task` (shape `(P,)`)."""

  def sample_tasks(self, key: jax.Array, num: int) -> jax.Array:
    """`num` task parameters uniform in the task space `C`, shape `(num, P)`."""
    return self.task_space.sample(key, num)

  @abc.abstractmethod
  def grid(self, num: int) -> jax.Array:
    """`num` tasks spread over `C`, shape `(num, P)`; the finite task set is `grid(K)`."""

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
