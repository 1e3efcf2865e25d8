"""Occupancy estimators: which states the expert would visit in a task it has not shown yet.

Each estimator has one signature, `estimator(ctx, key, tasks) -> Occupancy`, and is
registered by name in `ESTIMATORS`, so the estimator is a config value (AMF.md §3).
"""
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from amf import registry
from amf.data import Dataset
from amf.envs.base import MultiTaskEnv
from amf.rollout import policy_actor, rollouts

# log pi_n(a | s, phi(c)) of the current policy, for one (s, phi, a).
LogProb = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


class Context(NamedTuple):
  """What an estimator may use: the environment, the demonstrations so far, the policy."""
  env: MultiTaskEnv
  data: Dataset
  log_prob: LogProb
  num_samples: int  # m: estimated trajectories kept per task (static)
  act: Optional[Callable[[jax.Array, jax.Array], jax.Array]] = None  # (s, phi) -> action


class Occupancy(NamedTuple):
  """`obs` (C, m, H, obs_size): estimated expert states per task; `weights` (C, m) sum to 1."""
  obs: jax.Array
  weights: jax.Array


def log_importance_weights(ctx: Context, tasks: jax.Array) -> jax.Array:
  """`log w_i(c)` (C, M), unnormalised: sum_t log pi(a_t|s_t,c) - log pi(a_t|s_t,c_i).

  Empty slots get `-inf`. Dynamics and initial states cancel as they do not depend on c.
  """
  env, data = ctx.env, ctx.data
  traj_lp = jax.vmap(jax.vmap(ctx.log_prob, in_axes=(0, None, 0)), in_axes=(0, 0, 0))

  def relabelled(phi):  # (M,): each demonstration's log-likelihood under task features phi
    return traj_lp(data.obs, jnp.broadcast_to(phi, (data.size, phi.shape[0])),
                   data.actions).sum(-1)

  own = traj_lp(data.obs, jax.vmap(env.task_features)(data.task), data.actions).sum(-1)
  log_w = jax.vmap(relabelled)(jax.vmap(env.task_features)(tasks)) - own
  return jnp.where(data.mask, log_w, -jnp.inf)


def _keep_heaviest(ctx: Context, log_w: jax.Array) -> Occupancy:
  """Keeps the `m` heaviest demonstrations per task and self-normalises their weights.

  The truncation bounds the cost of scoring; with `m >= M` the estimator is the full
  self-normalised one.
  """
  top, index = jax.lax.top_k(log_w, min(ctx.num_samples, ctx.data.size))
  return Occupancy(ctx.data.obs[index], jax.nn.softmax(top, axis=-1))


def importance(ctx: Context, key: jax.Array, tasks: jax.Array) -> Occupancy:
  """Past demonstrations relabelled with each task, importance-weighted by the policy."""
  del key
  return _keep_heaviest(ctx, log_importance_weights(ctx, tasks))


def uniform(ctx: Context, key: jax.Array, tasks: jax.Array) -> Occupancy:
  """Past demonstrations relabelled with each task, all weighted equally (no correction).

  `m` of them are drawn at random per task (the same truncation as `importance`, without
  favouring the first slots).
  """
  draws = jax.random.uniform(key, (tasks.shape[0], ctx.data.size))
  top, index = jax.lax.top_k(jnp.where(ctx.data.mask, draws, -jnp.inf),
                             min(ctx.num_samples, ctx.data.size))
  weights = jnp.isfinite(top).astype(jnp.float32)
  return Occupancy(ctx.data.obs[index], weights / weights.sum(-1, keepdims=True))


def _rollouts(ctx: Context, actor, key: jax.Array, tasks: jax.Array) -> Occupancy:
  trajs = rollouts(ctx.env, actor, key, tasks, ctx.num_samples)
  m = ctx.num_samples
  return Occupancy(trajs.obs, jnp.full((tasks.shape[0], m), 1.0 / m))


def rollout(ctx: Context, key: jax.Array, tasks: jax.Array) -> Occupancy:
  """The current policy's own states in each task, rolled out in the simulator."""
  if ctx.act is None:
    raise ValueError("The rollout estimator needs the policy's `act` in its Context.")
  return _rollouts(ctx, policy_actor(ctx.env, ctx.act), key, tasks)


def oracle(ctx: Context, key: jax.Array, tasks: jax.Array) -> Occupancy:
  """Privileged diagnostic: the expert's own states in each task (its actions unused)."""
  return _rollouts(ctx, ctx.env.expert, key, tasks)


ESTIMATORS = {"importance": importance, "uniform": uniform, "rollout": rollout,
              "oracle": oracle}


def get(name: str):
  return registry.lookup(ESTIMATORS, name, "occupancy estimator")
