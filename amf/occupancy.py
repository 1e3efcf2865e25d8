"""Occupancy estimators: which states the expert would visit in a task it has not shown yet.

Each estimator has one signature, `estimator(ctx, key) -> OccupancyFn`, and is registered
by name in `ESTIMATORS`, so the estimator is a config value (docs/design.md §2). What it
fits once per round (the `learned` estimator's classifier) happens in the call; the returned
`occupancy(tasks) -> Occupancy` then serves any number of task sets: the targets, each round's
candidates, and every step of a continuous search over tasks, where it is differentiable in the
task parameters through `phi(c)` (simulated states are held fixed: `rollout`, `oracle`).
"""
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax

from amf import bc, keys, registry
from amf.data import Dataset, zero_padding
from amf.envs.base import MultiTaskEnv
from amf.policies import policy_inputs
from amf.nn_policy import MLP
from amf.rollout import policy_actor, rollout as episode

# log pi_n(a | s, phi(c)) of the current policy, for one (s, phi, a).
LogProb = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


class Critic(NamedTuple):
  """The `learned` estimator's classifier of `(s, phi(c))` pairs, and how it is trained."""
  hidden: tuple[int, ...] = (64, 64)
  steps: int = 300
  batch_size: int = 256
  learning_rate: float = 1e-3

  def train(self, data: Dataset, features_fn, key: jax.Array):
    """`logit(obs, phi)`: real pairs of past demos vs. pairs with another pair's task.

    At the optimum the logit is `log p(s | c) / p(s)`, so differences of logits are log
    density ratios `p(s | c) / p(s | c_i)`; it reaches unseen tasks through `phi(c)`.
    """
    net = MLP(self.hidden, 1)
    logit = lambda params, obs, phi: net.apply(params, policy_inputs(obs, phi))[..., 0]

    def loss(params, frozen, batch: bc.Pairs):
      del frozen
      # Negatives: the next pair's task; pairs are drawn at random, so this is a shuffle.
      negative = jnp.roll(batch.phi, 1, axis=0)
      terms = (jax.nn.softplus(-logit(params, batch.obs, batch.phi))
               + jax.nn.softplus(logit(params, batch.obs, negative)))
      return bc.masked_mean(terms, batch.weight)

    k_init, k_train = jax.random.split(key)
    params = net.init(k_init, jnp.zeros(data.obs.shape[-1] + features_fn(data.task[0]).shape[0]))
    optimizer = optax.adam(self.learning_rate)
    params, _, _ = bc.Trainer(loss, optimizer, self.batch_size).train(
        params, optimizer.init(params), data, features_fn, k_train, self.steps)
    return lambda obs, phi: logit(params, obs, phi)


class Context(NamedTuple):
  """What an estimator may use: the environment, the demonstrations so far, the policy."""
  env: MultiTaskEnv
  data: Dataset
  log_prob: LogProb
  num_samples: int  # m: estimated trajectories kept per task (static)
  act: Optional[Callable[[jax.Array, jax.Array], jax.Array]] = None  # (s, phi) -> action
  critic: Critic = Critic()  # the `learned` estimator's classifier


class Occupancy(NamedTuple):
  """`obs` (C, m, H, obs_size): estimated expert states per task; `weights` (C, m) sum to 1;
  `steps` (C, m, H): which of the states were recorded (`Dataset.steps`; None: all)."""
  obs: jax.Array
  weights: jax.Array
  steps: Optional[jax.Array] = None


OccupancyFn = Callable[[jax.Array], Occupancy]  # tasks (C, P) -> their Occupancy


def _relabelled_log_ratios(ctx: Context, tasks: jax.Array, score: LogProb) -> jax.Array:
  """`sum_t score(s_t, phi(c), a_t) - score(s_t, phi(c_i), a_t)` (C, M) over the recorded
  steps; empty slots `-inf`."""
  env, data = ctx.env, zero_padding(ctx.data)
  lp = jax.vmap(jax.vmap(score, in_axes=(0, None, 0)), in_axes=(0, 0, 0))
  if data.steps is None:
    traj_lp = lp
  else:
    traj_lp = lambda *x: jnp.where(data.steps, lp(*x), 0.0)

  def relabelled(phi):  # (M,): each demonstration's log-likelihood under task features phi
    return traj_lp(data.obs, jnp.broadcast_to(phi, (data.size, phi.shape[0])),
                   data.actions).sum(-1)

  own = traj_lp(data.obs, jax.vmap(env.task_features)(data.task), data.actions).sum(-1)
  log_w = jax.vmap(relabelled)(jax.vmap(env.task_features)(tasks)) - own
  return jnp.where(data.mask, log_w, -jnp.inf)


def log_importance_weights(ctx: Context, tasks: jax.Array) -> jax.Array:
  """`log w_i(c)` (C, M), unnormalised: sum_t log pi(a_t|s_t,c) - log pi(a_t|s_t,c_i).

  Empty slots get `-inf`. Dynamics and initial states cancel as they do not depend on c.
  """
  return _relabelled_log_ratios(ctx, tasks, ctx.log_prob)


def _keep_heaviest(ctx: Context, log_w: jax.Array) -> Occupancy:
  """Keeps the `m` heaviest demonstrations per task and self-normalises their weights.

  The truncation bounds the cost of scoring; with `m >= M` the estimator is the full
  self-normalised one.
  """
  top, index = jax.lax.top_k(log_w, min(ctx.num_samples, ctx.data.size))
  return _demonstrated(ctx.data, index, jax.nn.softmax(top, axis=-1))


def _demonstrated(data: Dataset, index: jax.Array, weights: jax.Array) -> Occupancy:
  """The demonstrations `index` (C, m) as each task's estimated trajectories, `weights`."""
  data = zero_padding(data)
  steps = None if data.steps is None else data.steps[index]
  return Occupancy(data.obs[index], weights, steps)


def importance(ctx: Context, key: jax.Array) -> OccupancyFn:
  """Past demonstrations relabelled with each task, importance-weighted by the policy."""
  del key
  return lambda tasks: _keep_heaviest(ctx, log_importance_weights(ctx, tasks))


def uniform(ctx: Context, key: jax.Array) -> OccupancyFn:
  """Past demonstrations relabelled with each task, all weighted equally (no correction).

  `m` of them are drawn at random per task (the same truncation as `importance`, without
  favouring the first slots), keyed by the task (`amf.keys.by_value`), not by its row.
  """
  def occupancy(tasks):
    draws = jax.vmap(lambda key: jax.random.uniform(key, (ctx.data.size,)))(
        keys.by_value(key, tasks))
    top, index = jax.lax.top_k(jnp.where(ctx.data.mask, draws, -jnp.inf),
                               min(ctx.num_samples, ctx.data.size))
    weights = jnp.isfinite(top).astype(jnp.float32)
    return _demonstrated(ctx.data, index, weights / weights.sum(-1, keepdims=True))
  return occupancy


def learned(ctx: Context, key: jax.Array) -> OccupancyFn:
  """Past demonstrations relabelled with each task, weighted by a learned density ratio.

  `log w_i(c) = sum_t logit(s_t, c) - logit(s_t, c_i)` with the contrastive `Critic`, trained
  afresh on the demonstrations so far; it needs neither the policy nor a finite task set.
  """
  logit = ctx.critic.train(ctx.data, ctx.env.task_features, key)
  score = lambda s, phi, a: logit(s, phi)
  return lambda tasks: _keep_heaviest(ctx, _relabelled_log_ratios(ctx, tasks, score))


def _rollouts(ctx: Context, actor, key: jax.Array) -> OccupancyFn:
  """`m` episodes of `actor` per task, keyed by the task (`amf.keys.by_value`)."""
  m = ctx.num_samples

  def occupancy(tasks):
    episodes = lambda key, c: jax.vmap(lambda one: episode(ctx.env, actor, one, c))(
        jax.random.split(key, m))
    trajs = jax.vmap(episodes)(keys.by_value(key, tasks), tasks)
    # Simulated states count as fixed in a search over tasks: differentiating the physics
    # is costly and, with contacts, unreliable.
    return Occupancy(jax.lax.stop_gradient(trajs.obs), jnp.full((tasks.shape[0], m), 1.0 / m))
  return occupancy


def rollout(ctx: Context, key: jax.Array) -> OccupancyFn:
  """The current policy's own states in each task, rolled out in the simulator."""
  if ctx.act is None:
    raise ValueError("The rollout estimator needs the policy's `act` in its Context.")
  return _rollouts(ctx, policy_actor(ctx.env, ctx.act), key)


def oracle(ctx: Context, key: jax.Array) -> OccupancyFn:
  """Privileged diagnostic: the expert's own states in each task (its actions unused)."""
  return _rollouts(ctx, ctx.env.expert, key)


ESTIMATORS = {"importance": importance, "uniform": uniform, "learned": learned,
              "rollout": rollout, "oracle": oracle}
REUSING = ("importance", "uniform", "learned")  # estimators built from past demonstrations


def get(name: str):
  return registry.lookup(ESTIMATORS, name, "occupancy estimator")
