"""The environments of `amf/envs/`: the registry, and the brax environments `reacher` and
`pusher` (tasks, experts, careless policies, errors).

Each brax environment compiles one program: episodes of the expert, a zero-action policy and a
random-action policy, vmapped over the three, on the finite task set plus sampled tasks.
(The integrator has its own file, test_integrator.py.)
"""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import envs
from amf.envs.integrator import Integrator
from amf.rollout import rollouts

ENVS = ("reacher", "pusher")
NUM_SAMPLED = 4  # continuous tasks per test run (the full check is experiments/experts.py)


def test_env_registry_builds_the_named_environment_with_its_settings():
  env = envs.make("integrator", num_tasks=6, horizon=4, radius=2.0)
  assert type(env) is Integrator and (env.num_tasks, env.horizon, env.radius) == (6, 4, 2.0)
  # Six goals evenly spaced on the circle of radius 2: task 1 at angle pi / 3.
  np.testing.assert_allclose(env.tasks[:, 0], np.arange(6) * np.pi / 3, rtol=1e-6)
  np.testing.assert_allclose(env.task_features(env.tasks[1]), [1.0, np.sqrt(3)], rtol=1e-6)
  with pytest.raises(ValueError, match=r"Unknown environment 'maze'; choose one of "
                     + re.escape(str(sorted(envs.ENVS)))):
    envs.make("maze")


def test_unknown_environment_is_a_clear_error():
  with pytest.raises(ValueError, match="Unknown environment 'reachr'"):
    envs.make("reachr")


@pytest.mark.parametrize("name, kwargs, message", [
    ("reacher", dict(radius=0.5), "reachable"),
    ("reacher", dict(radius_range=(0.1, 0.3)), "reachable"),
    ("reacher", dict(num_tasks=0), "num_tasks"),
    ("pusher", dict(distance_range=(0.2, 0.1)), "distance_range"),
    ("pusher", dict(angle_range=(1.0, 0.0)), "angle_range"),
    ("pusher", dict(horizon=0), "horizon"),
])
def test_tasks_out_of_range_are_clear_errors(name, kwargs, message):
  with pytest.raises(ValueError, match=message):
    envs.make(name, **kwargs)


def _actor(env, mode):
  """mode 0: the expert; 1: zero actions; 2: uniform random actions, seeded by the state."""
  def act(state):
    seed = jax.lax.bitcast_convert_type(state.obs.sum(), jnp.uint32)
    noise = jax.random.uniform(jax.random.fold_in(jax.random.PRNGKey(0), seed),
                               (env.action_size,), minval=-1.0, maxval=1.0)
    return jnp.select([mode == 0, mode == 1], [env.expert(state), jnp.zeros_like(noise)],
                      noise)
  return act


@pytest.fixture(scope="module", params=ENVS)
def setup(request):
  env = envs.make(request.param)
  tasks = jnp.concatenate([env.tasks, env.sample_tasks(jax.random.PRNGKey(1), NUM_SAMPLED)])
  run = jax.jit(jax.vmap(lambda key, mode: rollouts(env, _actor(env, mode), key, tasks),
                         in_axes=(None, 0)))
  modes = jnp.arange(3)
  return env, tasks, run, modes, run(jax.random.PRNGKey(0), modes)


@pytest.mark.slow  # brax
def test_expert_succeeds_on_every_task(setup):
  env, _, _, _, trajs = setup
  success = np.asarray(trajs.success[0, :, 0])
  assert success[:env.num_tasks].all(), f"discrete tasks failed: {np.flatnonzero(~success)}"
  assert success[env.num_tasks:].mean() >= 0.95


@pytest.mark.slow  # brax
def test_careless_policies_fail(setup):
  _, _, _, _, trajs = setup
  zero, random = np.asarray(trajs.success[1]), np.asarray(trajs.success[2])
  assert not zero.any()
  assert random.mean() <= 0.1


@pytest.mark.slow  # brax
def test_expert_beats_careless_return(setup):
  _, _, _, _, trajs = setup
  ret = np.asarray(trajs.ret.mean((1, 2)))
  assert ret[0] > ret[1] and ret[0] > ret[2]


@pytest.mark.slow  # brax
def test_shapes_and_determinism(setup):
  env, tasks, run, modes, trajs = setup
  num = env.num_tasks + NUM_SAMPLED
  assert trajs.obs.shape == (3, num, 1, env.horizon, env.observation_size)
  assert trajs.actions.shape == (3, num, 1, env.horizon, env.action_size)
  assert trajs.rewards.shape == (3, num, 1, env.horizon)
  np.testing.assert_array_equal(trajs.task[0, :, 0], tasks)
  assert np.isfinite(np.asarray(trajs.obs)).all()
  assert np.abs(np.asarray(trajs.actions)).max() <= 1.0
  again = run(jax.random.PRNGKey(0), modes)
  jax.tree.map(np.testing.assert_array_equal, trajs, again)
  other = run(jax.random.PRNGKey(3), modes)
  assert not np.array_equal(trajs.obs[0, :, :, 0], other.obs[0, :, :, 0])


@pytest.mark.slow  # brax
def test_reset_places_the_goal_from_the_task(setup):
  env, tasks, _, _, trajs = setup
  first = trajs.obs[0, :, 0, 0]  # the reset observation of each task's episode
  goal_obs = slice(4, 6) if isinstance(env, envs.Reacher) else slice(20, 22)
  np.testing.assert_allclose(first[:, goal_obs], env.task_features(tasks), atol=1e-5)
  assert env.task_features(tasks).shape == (len(tasks), env.task_feature_size)


@pytest.mark.slow  # brax
def test_sampled_tasks_stay_in_the_task_space(setup):
  env, _, _, _, _ = setup
  tasks = np.asarray(env.sample_tasks(jax.random.PRNGKey(0), 1000))
  assert tasks.shape == (1000, env.tasks.shape[1])
  bounds = ([(0, 2 * np.pi), env.radius_range] if isinstance(env, envs.Reacher)
            else [env.angle_range, env.distance_range])
  for column, (lo, hi) in zip(tasks.T, bounds):
    assert lo <= column.min() and column.max() <= hi
  np.testing.assert_array_equal(tasks, env.sample_tasks(jax.random.PRNGKey(0), 1000))
