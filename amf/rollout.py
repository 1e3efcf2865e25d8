"""Episodes of any policy (expert or learned) as fixed-shape trajectories, batched with vmap."""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from amf import keys
from amf.envs.base import MultiTaskEnv, State

# An actor maps an environment state to an action (it may read `state.info['task']`).
Actor = Callable[[State], jax.Array]


class Trajectory(NamedTuple):
  """One episode: inputs the policy saw, actions taken, rewards, and the outcome."""
  obs: jax.Array      # (H, obs_size): the state each action was taken in
  actions: jax.Array  # (H, action_size)
  rewards: jax.Array  # (H,)
  task: jax.Array     # (P,) task parameters
  success: jax.Array  # () bool, the env's success test on the final state

  @property
  def ret(self) -> jax.Array:
    return self.rewards.sum(-1)


def rollout(env: MultiTaskEnv, actor: Actor, key: jax.Array, task: jax.Array,
            noise: float = 0.0) -> Trajectory:
  """Runs one episode of `actor` in task `task` for `env.horizon` steps.

  With `noise > 0` (a static setting) the environment executes the actor's action plus
  Gaussian noise of std `noise`, while `actions` records the actor's own action: for an
  expert, that is DART (the expert labels the states its perturbed actions reach, so BC sees
  how to recover from small errors). The reset and the noise then get a stream each
  (`amf.keys`); without noise the reset takes the episode's key whole.
  """
  if noise > 0:
    s = keys.streams(key, ("reset", "noise"))
    reset_key, noise_keys = s["reset"], jax.random.split(s["noise"], env.horizon)
  else:
    reset_key, noise_keys = key, None

  def step(state, noise_key):
    action = actor(state)
    executed = action if noise_key is None else (
        action + noise * jax.random.normal(noise_key, action.shape))
    next_state = env.step(state, executed)
    return next_state, (state.obs, action, next_state.reward)

  final, (obs, actions, rewards) = jax.lax.scan(step, env.reset(reset_key, task), noise_keys,
                                                length=env.horizon)
  return Trajectory(obs, actions, rewards, task, env.success(final))


def rollouts(env: MultiTaskEnv, actor: Actor, key: jax.Array, tasks: jax.Array,
             episodes: int = 1, task_batch: int = 0, episode_batch: int = 0) -> Trajectory:
  """Episodes of every task in `tasks` (shape `(T, P)`): leaves shaped `(T, episodes, ...)`.

  `task_batch` tasks run side by side (`lax.map` over chunks); 0 runs all of them at once.
  `episode_batch`, if > 0, instead runs that many of the `T x episodes` episodes side by side.
  On CPU, brax physics slows down per step when thousands of episodes run side by side (many
  vmapped seeds), so chunking keeps a sweep's cost linear in its number of runs; every
  episode keeps its key, so the chunking changes no episode (docs/speed.md).
  """
  keys = jax.random.split(key, (tasks.shape[0], episodes))
  if episode_batch:
    flat = jax.lax.map(lambda kc: rollout(env, actor, *kc),
                       (keys.reshape(-1, *keys.shape[2:]), jnp.repeat(tasks, episodes, 0)),
                       batch_size=episode_batch)
    return jax.tree.map(lambda x: x.reshape(tasks.shape[0], episodes, *x.shape[1:]), flat)
  per_task = jax.vmap(lambda key, c: rollout(env, actor, key, c), in_axes=(0, None))
  if not task_batch:
    return jax.vmap(per_task)(keys, tasks)
  return jax.lax.map(lambda kc: per_task(*kc), (keys, tasks), batch_size=task_batch)


def expert_actor(env: MultiTaskEnv) -> Actor:
  return env.expert


def policy_actor(env: MultiTaskEnv, policy: Callable[[jax.Array, jax.Array], jax.Array]) -> Actor:
  """Wraps `policy(obs, task_features) -> action` as an actor."""
  return lambda state: policy(state.obs, env.task_features(state.info["task"]))


class Evaluation(NamedTuple):
  """Per-task means over episodes: return `(T,)` and success rate `(T,)`."""
  ret: jax.Array
  success: jax.Array


def evaluate(env: MultiTaskEnv, actor: Actor, key: jax.Array, tasks: jax.Array,
             episodes: int, task_batch: int = 0, episode_batch: int = 0) -> Evaluation:
  trajs = rollouts(env, actor, key, tasks, episodes, task_batch, episode_batch)
  return Evaluation(trajs.ret.mean(-1), trajs.success.astype(jnp.float32).mean(-1))
