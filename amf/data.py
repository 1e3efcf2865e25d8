"""Demonstration datasets: fixed-shape trajectory buffers with masks, and pre-training mixes."""
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from amf.envs.base import MultiTaskEnv
from amf.policies import policy_inputs
from amf.rollout import expert_actor, rollout

TASK_MIXES = ("uniform", "skewed", "subset")


class Dataset(NamedTuple):
  """`M` demonstration slots of horizon `H`; slots with `mask == False` are empty.

  `steps` (M, H) bool marks the recorded steps of each slot: an episode shorter than `H` is
  padded (at its end, by `amf.demo_io` and `pad`) with steps marked False, which no reader
  uses (`flat_pairs` zeroes them as it zeroes empty slots). `None`: every step of a filled
  slot is recorded (the simulator's episodes), and every reader runs as without masks.
  """
  obs: jax.Array      # (M, H, obs_size)
  actions: jax.Array  # (M, H, action_size)
  task: jax.Array     # (M, P) task parameters
  task_id: jax.Array  # (M,) index into env.tasks, -1 for a task off the finite set
  mask: jax.Array     # (M,) bool
  steps: Optional[jax.Array] = None  # (M, H) bool, or None: every step

  @property
  def size(self) -> int:
    return self.mask.shape[0]


def empty(env: MultiTaskEnv, size: int) -> Dataset:
  h, p = env.horizon, env.tasks.shape[1]
  return Dataset(
      obs=jnp.zeros((size, h, env.observation_size)),
      actions=jnp.zeros((size, h, env.action_size)),
      task=jnp.zeros((size, p)),
      task_id=jnp.full((size,), -1, jnp.int32),
      mask=jnp.zeros((size,), bool))


def with_steps(data):
  """`data` (a Dataset, or an `amf.occupancy.Occupancy`: states `obs` (..., obs_size) and
  their `steps` (...)) with its step mask as an array (every step recorded where it is None)."""
  if data.steps is not None:
    return data
  return data._replace(steps=jnp.ones(data.obs.shape[:-1], bool))


def _agree(a: Dataset, b: Dataset) -> tuple[Dataset, Dataset]:
  """Both with a step mask if either has one (a tree op needs the same structure)."""
  if (a.steps is None) == (b.steps is None):
    return a, b
  return with_steps(a), with_steps(b)


def write(data: Dataset, index: jax.Array, new: Dataset) -> Dataset:
  """Fills slots `index` (shape `(B,)`) with the `B` demonstrations of `new` (all filled)."""
  data, new = _agree(data, new)
  return jax.tree.map(lambda old, x: old.at[index].set(x), data,
                      new._replace(mask=jnp.ones_like(new.mask)))


def concat(a: Dataset, b: Dataset) -> Dataset:
  return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), *_agree(a, b))


def pad(data: Dataset, horizon: int) -> Dataset:
  """`data` with `horizon` steps per slot: each episode padded at its end with zero steps
  marked unrecorded in `steps`."""
  extra = horizon - data.obs.shape[1]
  if extra < 0:
    raise ValueError(f"cannot pad episodes of {data.obs.shape[1]} steps to {horizon}.")
  data = with_steps(data)
  widen = lambda x: jnp.pad(x, [(0, 0), (0, extra)] + [(0, 0)] * (x.ndim - 2))
  return data._replace(obs=widen(data.obs), actions=widen(data.actions),
                       steps=widen(data.steps))


def every(data: Dataset, stride: int) -> Dataset:
  """Every `stride`-th step of each slot (steps 0, stride, 2 stride, ...)."""
  strided = data._replace(obs=data.obs[:, ::stride], actions=data.actions[:, ::stride])
  if data.steps is None:
    return strided
  return strided._replace(steps=data.steps[:, ::stride])


def zero_padding(data: Dataset) -> Dataset:
  """`data` with the observations and actions of its unrecorded steps zeroed, so garbage
  there cannot reach products or gradients (`data` itself when every step is recorded)."""
  if data.steps is None:
    return data
  keep = data.steps[..., None]
  return data._replace(obs=jnp.where(keep, data.obs, 0), actions=jnp.where(keep, data.actions, 0))


def demonstrate(env: MultiTaskEnv, key: jax.Array, task_ids: jax.Array,
                noise: float = 0.0) -> Dataset:
  """One expert demonstration for each of the finite-set tasks `task_ids` (shape `(B,)`)."""
  if not isinstance(task_ids, jax.core.Tracer):  # concrete ids: refuse what jit would clamp
    ids = np.asarray(task_ids)
    bad = ids[(ids < 0) | (ids >= env.num_tasks)]
    if bad.size:
      raise ValueError(f"Task ids {bad.tolist()} are out of range for {env.num_tasks} tasks.")
  return demonstrate_tasks(env, key, env.tasks[task_ids], task_ids, noise)


def demonstrate_tasks(env: MultiTaskEnv, key: jax.Array, tasks: jax.Array, task_ids: jax.Array,
                      noise: float = 0.0) -> Dataset:
  """One expert demonstration for each task `tasks` (parameters, shape `(B, P)`).

  `task_ids` (B,) names each in the finite set, -1 for a task off it. `noise`: std of the
  Gaussian noise added to the executed actions (DART, `rollout.rollout`); the recorded actions
  are the expert's labels.
  """
  keys = jax.random.split(key, tasks.shape[0])
  trajs = jax.vmap(lambda key, c: rollout(env, expert_actor(env), key, c, noise))(keys, tasks)
  return Dataset(trajs.obs, trajs.actions, tasks, task_ids.astype(jnp.int32),
                 jnp.ones(task_ids.shape, bool))


def flat_pairs(data: Dataset, features_fn) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Every `(s, phi(c), a)` of the dataset, flattened to `N = M * H` rows, with the mask.

  Returns `(obs (N, obs_size), phi (N, f), actions (N, action_size), mask (N,))`; the mask is
  the slot's and the step's (`Dataset.steps`). Rows of empty slots and unrecorded steps are
  zeroed, not just masked, so garbage there cannot reach products or gradients.
  """
  m, h = data.mask.shape[0], data.obs.shape[1]
  phi = jax.vmap(features_fn)(data.task)
  phi = jnp.broadcast_to(phi[:, None], (m, h, phi.shape[-1]))
  mask = jnp.broadcast_to(data.mask[:, None], (m, h))
  if data.steps is not None:
    mask = mask & data.steps
  flat = lambda x: jnp.where(mask[..., None], x, 0).reshape(m * h, -1)
  return flat(data.obs), flat(phi), flat(data.actions), mask.reshape(-1)


def dataset_inputs(env: MultiTaskEnv, data: Dataset) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Flattened `(inputs x = (s, phi(c)) (M*H, d), actions (M*H, a), mask (M*H,))`."""
  obs, phi, actions, mask = flat_pairs(data, env.task_features)
  return policy_inputs(obs, phi), actions, mask


def mix_weights(mix: str, num_tasks: int, k=None, strength=None) -> jax.Array:
  """Task probabilities of a pre-training mix.

  `uniform`: all tasks equally. `skewed`: Zipf weights `(i + 1)^-strength` (strength 0 is
  uniform). `subset`: uniform over the first `k` tasks (the paper's "mismatch"). `k` and
  `strength` may be traced values, so mixes vmap.
  """
  i = jnp.arange(num_tasks)
  if mix == "uniform":
    w = jnp.ones(num_tasks)
  elif mix == "skewed":
    w = (i + 1.0) ** (-jnp.asarray(strength, jnp.float32))
  elif mix == "subset":
    w = (i < k).astype(jnp.float32)
  else:
    raise ValueError(f"Unknown task mix {mix!r}; choose one of {TASK_MIXES}.")
  return w / w.sum()


def apportion(weights: jax.Array, total: int) -> jax.Array:
  """Integer counts summing to `total`, proportional to `weights` (largest remainder)."""
  exact = weights * total
  counts = jnp.floor(exact).astype(jnp.int32)
  remainder = total - counts.sum()
  # Ties broken towards lower task indices, so the result is deterministic.
  order = jnp.argsort(-(exact - counts), stable=True)
  bonus = jnp.zeros_like(counts).at[order].set((jnp.arange(weights.shape[0]) < remainder)
                                               .astype(jnp.int32))
  return counts + bonus


def counts_to_ids(counts: jax.Array, total: int) -> jax.Array:
  """`(total,)` task ids, task `i` repeated `counts[i]` times."""
  return jnp.searchsorted(jnp.cumsum(counts), jnp.arange(total), side="right").astype(jnp.int32)


def pretraining(env: MultiTaskEnv, key: jax.Array, size: int, weights: jax.Array,
                noise: float = 0.0) -> Dataset:
  """`size` expert demonstrations with per-task counts apportioned exactly from `weights`."""
  return demonstrate(env, key, counts_to_ids(apportion(weights, size), size), noise)


def task_counts(data: Dataset, num_tasks: int) -> jax.Array:
  """Demonstrations per finite-set task, counting only filled slots."""
  one_hot = jax.nn.one_hot(data.task_id, num_tasks, dtype=jnp.int32)  # all-zero rows for -1
  return (one_hot * data.mask[:, None]).sum(0)
