"""Tests of the rollout helpers (`amf/rollout.py`) on the integrator: shapes, keys, chunked
tasks, policy actors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import rollout


def test_shapes(env, run_expert):
  assert (env.horizon, env.observation_size, env.action_size, env.task_feature_size,
          env.num_tasks) == (8, 2, 2, 2, 12)
  assert env.tasks.shape == (12, 1)
  trajs = run_expert(jax.random.PRNGKey(0), env.tasks[:3])
  assert trajs.obs.shape == (3, 5, 8, 2)
  assert trajs.actions.shape == (3, 5, 8, 2)
  assert trajs.rewards.shape == (3, 5, 8)
  assert trajs.task.shape == (3, 5, 1)
  assert trajs.success.shape == (3, 5) and trajs.success.dtype == jnp.bool_
  np.testing.assert_allclose(trajs.ret, trajs.rewards.sum(-1))
  np.testing.assert_allclose(trajs.task[:, 0], env.tasks[:3])


def test_deterministic_for_a_fixed_key(env, run_expert):
  key = jax.random.PRNGKey(7)
  a, b = run_expert(key, env.tasks), run_expert(key, env.tasks)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  c = run_expert(jax.random.PRNGKey(8), env.tasks)
  assert not np.array_equal(a.obs[:, :, 0], c.obs[:, :, 0])


@pytest.mark.slow  # > 3 s
@pytest.mark.parametrize("chunk", [dict(task_batch=5), dict(episode_batch=7)])
def test_tasks_or_episodes_run_in_chunks_give_the_same_episodes(env, run_expert, chunk):
  # Each episode keeps its key; only floating-point reassociation may differ (on pusher's
  # contact physics enough to move a run's mean return by ~0.02: docs/speed.md).
  key = jax.random.PRNGKey(3)
  together = run_expert(key, env.tasks)
  chunked = jax.jit(lambda key: rollout.rollouts(env, env.expert, key, env.tasks, 5,
                                                 **chunk))(key)
  for a, b in zip(jax.tree.leaves(together), jax.tree.leaves(chunked)):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_episodes_start_from_different_states(env, run_expert):
  starts = np.asarray(run_expert(jax.random.PRNGKey(0), env.tasks).obs[:, :, 0]).reshape(-1, 2)
  assert len(np.unique(starts.round(6), axis=0)) == starts.shape[0]
  assert np.abs(starts).max() < 5 * env.init_noise


def test_policy_actor_passes_obs_and_task_features(env):
  seen = []

  def policy(obs, phi):
    seen.append((obs.shape, phi.shape))
    return phi - obs  # clipped to the expert's move

  traj = rollout.rollout(env, rollout.policy_actor(env, policy), jax.random.PRNGKey(0),
                         env.tasks[5])
  assert seen == [((2,), (2,))]
  assert bool(traj.success)
