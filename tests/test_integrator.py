"""Tests of the 2-D integrator environment, its expert, and the rollout helpers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import envs, rollout
from amf.envs.integrator import Integrator


@pytest.fixture(scope="module")
def env():
  return Integrator()


@pytest.fixture(scope="module")
def run_expert(env):
  return jax.jit(lambda key, tasks: rollout.rollouts(env, env.expert, key, tasks, 5))


def test_expert_succeeds_on_every_finite_task(env):
  ev = jax.jit(lambda k: rollout.evaluate(env, env.expert, k, env.tasks, 5))(
      jax.random.PRNGKey(0))
  assert ev.success.shape == (12,) and ev.ret.shape == (12,)
  np.testing.assert_array_equal(ev.success, 1.0)


def test_expert_succeeds_on_random_continuous_tasks(env, run_expert):
  tasks = env.sample_tasks(jax.random.PRNGKey(1), 12)
  assert tasks.shape == (12, 1)
  assert float(tasks.min()) >= 0.0 and float(tasks.max()) < 2 * np.pi
  trajs = run_expert(jax.random.PRNGKey(2), tasks)
  assert bool(trajs.success.all())


def test_expert_ends_on_the_goal(env, run_expert):
  trajs = run_expert(jax.random.PRNGKey(3), env.tasks)
  final = trajs.obs[:, :, -1] + trajs.actions[:, :, -1]
  goals = jax.vmap(env.task_features)(env.tasks)[:, None]
  np.testing.assert_allclose(final, np.broadcast_to(goals, final.shape), atol=1e-5)
  # The expert never asks for more than the clip allows.
  assert float(jnp.abs(trajs.actions).max()) <= env.max_action + 1e-6


def test_zero_actions_fail(env):
  zero = lambda state: jnp.zeros(2)
  ev = jax.jit(lambda k: rollout.evaluate(env, zero, k, env.tasks, 3))(jax.random.PRNGKey(0))
  np.testing.assert_array_equal(ev.success, 0.0)
  # Standing still near the origin costs about the radius per step.
  np.testing.assert_allclose(ev.ret, -env.horizon * env.radius, rtol=0.1)


def test_expert_beats_zero_actions_on_return(env):
  key = jax.random.PRNGKey(4)
  zero = lambda state: jnp.zeros(2)
  expert, still = jax.jit(lambda k: (rollout.evaluate(env, env.expert, k, env.tasks, 2),
                                     rollout.evaluate(env, zero, k, env.tasks, 2)))(key)
  assert bool(jnp.all(expert.ret > still.ret + 1.0))


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


def test_task_features_are_goals_on_the_circle():
  env = Integrator(num_tasks=4, radius=2.0)
  phi = jax.vmap(env.task_features)(env.tasks)
  np.testing.assert_allclose(phi, [[2, 0], [0, 2], [-2, 0], [0, -2]], atol=1e-6)


def test_deterministic_for_a_fixed_key(env, run_expert):
  key = jax.random.PRNGKey(7)
  a, b = run_expert(key, env.tasks), run_expert(key, env.tasks)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  c = run_expert(jax.random.PRNGKey(8), env.tasks)
  assert not np.array_equal(a.obs[:, :, 0], c.obs[:, :, 0])


def test_tasks_run_in_chunks_give_the_same_episodes(env, run_expert):
  key = jax.random.PRNGKey(3)
  together = run_expert(key, env.tasks)
  chunked = jax.jit(lambda key: rollout.rollouts(env, env.expert, key, env.tasks, 5,
                                                 task_batch=5))(key)
  for a, b in zip(jax.tree.leaves(together), jax.tree.leaves(chunked)):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_episodes_start_from_different_states(env, run_expert):
  starts = np.asarray(run_expert(jax.random.PRNGKey(0), env.tasks).obs[:, :, 0]).reshape(-1, 2)
  assert len(np.unique(starts.round(6), axis=0)) == starts.shape[0]
  assert np.abs(starts).max() < 5 * env.init_noise


def test_step_clips_actions_and_rewards_distance():
  env = Integrator(init_noise=0.0)
  state = env.reset(jax.random.PRNGKey(0), env.tasks[0])  # goal at (1, 0)
  np.testing.assert_array_equal(state.obs, [0.0, 0.0])
  state = env.step(state, jnp.array([5.0, -5.0]))
  np.testing.assert_allclose(state.obs, [0.25, -0.25])
  expected = -np.hypot(0.75, 0.25) - env.ctrl_cost * 2 * 0.25 ** 2
  np.testing.assert_allclose(state.reward, expected, rtol=1e-6)
  assert not bool(env.success(state))
  assert bool(env.success(state.replace(obs=jnp.array([0.95, 0.0]))))


def test_policy_actor_passes_obs_and_task_features(env):
  seen = []

  def policy(obs, phi):
    seen.append((obs.shape, phi.shape))
    return phi - obs  # clipped to the expert's move

  traj = rollout.rollout(env, rollout.policy_actor(env, policy), jax.random.PRNGKey(0),
                         env.tasks[5])
  assert seen == [((2,), (2,))]
  assert bool(traj.success)


@pytest.mark.parametrize("kwargs", [dict(num_tasks=0), dict(horizon=0), dict(num_tasks=-3)])
def test_bad_constructor_args_raise(kwargs):
  with pytest.raises(ValueError, match="Integrator"):
    Integrator(**kwargs)


def test_env_registry():
  env = envs.make("integrator", num_tasks=6, horizon=4)
  assert isinstance(env, Integrator) and env.num_tasks == 6 and env.horizon == 4
  with pytest.raises(ValueError, match="environment 'maze'"):
    envs.make("maze")
