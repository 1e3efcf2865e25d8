"""A lab's task space as data: the tasks `amf.suggest` may ask for, without a simulator.

`TaskSet` is a `MultiTaskEnv` without a simulator (`reset`, `step`, `success` and `expert`
raise): the estimators that re-use demonstrations (`importance`, `uniform`, `learned`) never
call them. A question file describes one under `task_space` (`from_spec`), in one of two ways:

- a finite list of tasks: `{"tasks": [[c...], ...]}`, each a vector of task parameters; the
  policy sees `phi(c) = c` unless `"features"` names a map. Its box is the one the tasks span.
- a box: `{"low": [...], "high": [...], "periodic": [...], "features": "polar",
  "num_tasks": 8}`; its finite set is the box's grid of `num_tasks` (`TaskBox.grid`).

Feature maps are registered by name in `FEATURES`, one signature: `phi(c (P,)) -> (F,)`.
"""
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from amf import registry
from amf.envs.base import MultiTaskEnv, TaskBox, polar

FEATURES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "identity": lambda c: c,
    "polar": polar,                # (angle, radius, ...) -> the point (x, y): reacher's goals
    "angle": lambda c: jnp.concatenate([jnp.cos(c[:1]), jnp.sin(c[:1]), c[1:]]),  # angle first
}


class TaskSet(MultiTaskEnv):
  """The tasks of a question and the sizes of the policy's inputs; no simulator."""

  def __init__(self, tasks, task_space: TaskBox, features: str, horizon: int,
               observation_size: int, action_size: int):
    self._features = registry.lookup(FEATURES, features, "task feature map")
    self.features = features
    self.tasks = jnp.asarray(tasks, jnp.float32)
    self.task_space = task_space
    self.horizon, self.observation_size, self.action_size = horizon, observation_size, action_size
    self.task_feature_size = int(jax.eval_shape(self._features, self.tasks[0]).shape[0])

  def task_features(self, task):
    return self._features(task)

  def grid(self, num: int):
    return self.task_space.grid(num)

  def _no_simulator(self, *args):
    raise TypeError("A TaskSet has no simulator: use an estimator that re-uses the "
                    "demonstrations (importance, uniform, learned).")

  reset = step = success = expert = _no_simulator


KEYS = ("tasks", "low", "high", "periodic", "features", "num_tasks")


class Sizes(NamedTuple):
  """A policy's sizes without a task space (a lab's own network, `amf.flax_policy`)."""
  horizon: int
  observation_size: int
  action_size: int
  task_feature_size: Optional[int] = None  # None: whatever the task space's features give


def from_spec(spec, like, where: str) -> TaskSet:
  """The `TaskSet` a `task_space` spec (a question file's, an own network's policy.json)
  describes, with the horizon and observation and action sizes of `like` (an environment or
  `Sizes`), whose task features must have its size; bad specs are refused naming `where` and
  the key."""
  if not isinstance(spec, dict):
    raise ValueError(f"{where}: task_space must be an object ({{\"tasks\": [[c...], ...]}} or "
                     f"{{\"low\": [...], \"high\": [...], \"features\": name}}), got {spec!r}.")
  unknown = sorted(set(spec) - set(KEYS))
  if unknown:
    raise ValueError(f"{where}: task_space: unknown keys {unknown}; allowed: {list(KEYS)}.")
  listed, boxed = "tasks" in spec, "low" in spec or "high" in spec
  if listed == boxed:
    raise ValueError(f"{where}: task_space needs either tasks (a finite list) or low and high "
                     "(a box), not both nor neither.")
  features = spec.get("features", "identity")
  if features not in FEATURES:
    raise ValueError(f"{where}: task_space: unknown features {features!r}; choose one of "
                     f"{sorted(FEATURES)}.")
  if listed:
    tasks = numbers(spec["tasks"], 2, f"{where}: task_space.tasks",
                    "a list of tasks [[c...], ...]")
    low, high = tasks.min(0), tasks.max(0)
    high = np.where(high > low, high, low + 1.0)  # a parameter all tasks share: a unit width
    box = TaskBox(tuple(low.tolist()), tuple(high.tolist()), (False,) * tasks.shape[1])
  else:
    low = numbers(spec.get("low"), 1, f"{where}: task_space.low", "a list of numbers")
    high = numbers(spec.get("high"), 1, f"{where}: task_space.high", "a list of numbers")
    periodic = spec.get("periodic", [False] * len(low))
    if (len(high) != len(low) or not np.all(high > low) or not isinstance(periodic, list)
        or len(periodic) != len(low) or not all(isinstance(p, bool) for p in periodic)):
      raise ValueError(f"{where}: task_space needs low < high and periodic (true/false) for "
                       f"each task parameter, got low {spec.get('low')}, high "
                       f"{spec.get('high')}, periodic {periodic}.")
    num = spec.get("num_tasks", 8)
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
      raise ValueError(f"{where}: task_space.num_tasks must be a whole number >= 1, got {num!r}.")
    box = TaskBox(tuple(low.tolist()), tuple(high.tolist()), tuple(periodic))
    tasks = np.asarray(box.grid(num))
  try:
    out = TaskSet(tasks, box, features, like.horizon, like.observation_size, like.action_size)
  except (TypeError, ValueError, IndexError) as e:
    raise ValueError(f"{where}: task_space: features {features!r} do not apply to tasks of "
                     f"{tasks.shape[1]} parameters ({e}).") from None
  if like.task_feature_size not in (None, out.task_feature_size):
    raise ValueError(f"{where}: task_space: features {features!r} give {out.task_feature_size} "
                     f"numbers per task; the policy takes {like.task_feature_size}.")
  return out


def numbers(value, depth: int, where: str, what: str) -> np.ndarray:
  """`value` (JSON) as a finite array of `depth` dimensions, or a refusal naming `where`."""
  try:
    out = np.asarray(value, np.float64)
  except (TypeError, ValueError):
    out = None
  if out is None or out.ndim != depth or out.size == 0 or not np.isfinite(out).all():
    raise ValueError(f"{where} must be {what}, got {value!r}.")
  return out
