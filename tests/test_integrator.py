"""Tests of the 2-D integrator environment (`amf/envs/integrator.py`) and its expert."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import rollout
from amf.envs.integrator import Integrator


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


def test_task_features_are_goals_on_the_circle():
  env = Integrator(num_tasks=4, radius=2.0)
  phi = jax.vmap(env.task_features)(env.tasks)
  np.testing.assert_allclose(phi, [[2, 0], [0, 2], [-2, 0], [0, -2]], atol=1e-6)


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


@pytest.mark.parametrize("kwargs", [dict(num_tasks=0), dict(horizon=0), dict(num_tasks=-3)])
def test_bad_constructor_args_raise(kwargs):
  with pytest.raises(ValueError, match="Integrator"):
    Integrator(**kwargs)
