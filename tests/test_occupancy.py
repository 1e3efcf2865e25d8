"""Tests of the occupancy estimators: importance weights, truncation, the learned ratio, the oracle,
the registry."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import keys, occupancy
from amf.data import Dataset, demonstrate
from amf.envs.integrator import Integrator
from amf.rollout import rollout

H = 2


@pytest.fixture(scope="module")
def env():
  return Integrator(num_tasks=4, horizon=H)


def _toy_log_prob(s, phi, a):
  """A task-dependent Gaussian policy: mean 0.3 (phi - s), unit std (up to a constant)."""
  return -0.5 * jnp.sum((a - 0.3 * (phi - s)) ** 2)


def _toy_log_prob_np(s, phi, a):
  return -0.5 * np.sum((a - 0.3 * (phi - s)) ** 2)


def _dataset(env, seed=0):
  """Three demos (tasks 0, 1, 3) and one empty slot holding garbage."""
  rng = np.random.default_rng(seed)
  task_id = np.array([0, 1, 3, 2], np.int32)
  return Dataset(obs=jnp.asarray(rng.normal(size=(4, H, 2)), jnp.float32),
                 actions=jnp.asarray(rng.normal(size=(4, H, 2)), jnp.float32),
                 task=env.tasks[task_id], task_id=jnp.asarray(task_id),
                 mask=jnp.array([True, True, True, False]))


def _hand_log_weights(env, data, log_prob):
  """(K, M) log w_i(c) by explicit loops, -inf on empty slots."""
  phi = np.asarray(jax.vmap(env.task_features)(env.tasks), np.float64)
  obs, act = np.asarray(data.obs, np.float64), np.asarray(data.actions, np.float64)
  out = np.full((env.num_tasks, data.size), -np.inf)
  for c in range(env.num_tasks):
    for i in range(data.size):
      if data.mask[i]:
        own = phi[int(data.task_id[i])]
        out[c, i] = sum(log_prob(obs[i, t], phi[c], act[i, t]) - log_prob(obs[i, t], own, act[i, t])
                        for t in range(H))
  return out


def _run(env, data, log_prob, num_samples, estimator="importance", key=None):
  ctx = occupancy.Context(env, data, log_prob, num_samples)
  return jax.jit(lambda k: occupancy.get(estimator)(ctx, k)(env.tasks))(
      jax.random.PRNGKey(0) if key is None else key)


def test_log_importance_weights_match_hand_computation(env):
  data = _dataset(env)
  ctx = occupancy.Context(env, data, _toy_log_prob, 4)
  got = jax.jit(lambda: occupancy.log_importance_weights(ctx, env.tasks))()
  expected = _hand_log_weights(env, data, _toy_log_prob_np)
  assert got.shape == (4, 4)
  np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
  finite = np.isfinite(expected)
  np.testing.assert_allclose(np.asarray(got)[finite], expected[finite], rtol=1e-4, atol=1e-4)
  # A demonstration relabelled with its own task has log-weight exactly zero.
  for i, c in enumerate([0, 1, 3]):
    np.testing.assert_allclose(got[c, i], 0.0, atol=1e-5)
  assert np.ptp(expected[finite]) > 0.1  # the toy policy makes the weights differ


def test_importance_weights_are_self_normalised_hand_weights(env):
  data = _dataset(env)
  occ = _run(env, data, _toy_log_prob, num_samples=4)
  log_w = _hand_log_weights(env, data, _toy_log_prob_np)
  w = np.exp(log_w - log_w.max(1, keepdims=True))
  w /= w.sum(1, keepdims=True)
  assert occ.obs.shape == (4, 4, H, 2) and occ.weights.shape == (4, 4)
  np.testing.assert_allclose(occ.weights.sum(1), 1.0, rtol=1e-5)
  for c in range(4):
    order = np.argsort(-w[c], kind="stable")
    np.testing.assert_allclose(occ.weights[c], w[c, order], rtol=1e-4, atol=1e-6)
    # The kept trajectories are the demos' own states, in the same order as their weights.
    np.testing.assert_allclose(occ.obs[c, :3], data.obs[order[:3]])


def test_masked_slots_get_zero_weight(env):
  data = _dataset(env)
  occ = _run(env, data, _toy_log_prob, num_samples=4)
  # The empty slot (index 3) ranks last for every task, with weight exactly zero.
  np.testing.assert_array_equal(occ.weights[:, 3], 0.0)
  np.testing.assert_array_equal(occ.obs[:, 3], np.broadcast_to(data.obs[3], (4, H, 2)))


def test_weights_are_uniform_when_the_policy_ignores_the_task(env):
  data = _dataset(env)
  blind = lambda s, phi, a: -0.5 * jnp.sum((a - 0.7 * s) ** 2)
  occ = _run(env, data, blind, num_samples=3)
  np.testing.assert_allclose(occ.weights, 1.0 / 3, rtol=1e-5)
  for c in range(4):  # all three filled demos, never the empty slot
    kept = {tuple(np.asarray(o).ravel().round(5)) for o in occ.obs[c]}
    assert kept == {tuple(np.asarray(o).ravel().round(5)) for o in data.obs[:3]}


def test_top_m_truncation_keeps_the_heaviest(env):
  data = _dataset(env)
  occ = _run(env, data, _toy_log_prob, num_samples=2)
  log_w = _hand_log_weights(env, data, _toy_log_prob_np)
  assert occ.weights.shape == (4, 2)
  for c in range(4):
    top = np.argsort(-log_w[c], kind="stable")[:2]
    np.testing.assert_allclose(occ.obs[c], data.obs[top])
    expected = np.exp(log_w[c, top] - log_w[c, top].max())
    np.testing.assert_allclose(occ.weights[c], expected / expected.sum(), rtol=1e-4)


def test_num_samples_beyond_the_dataset_is_capped(env):
  occ = _run(env, _dataset(env), _toy_log_prob, num_samples=10)
  assert occ.weights.shape == (4, 4)


def _padded(data, extra, garbage):
  """`data` with `extra` steps appended, holding `garbage` and marked unrecorded (`steps`)."""
  m, h = data.obs.shape[:2]
  pad = lambda x: jnp.concatenate([x, jnp.full((m, extra, x.shape[-1]), garbage, x.dtype)], 1)
  return data._replace(obs=pad(data.obs), actions=pad(data.actions),
                       steps=jnp.broadcast_to(jnp.arange(h + extra) < h, (m, h + extra)))


@pytest.mark.parametrize("estimator", ["importance", "uniform"])
def test_unrecorded_steps_change_no_estimate(env, estimator):
  """Demonstrations padded with unrecorded steps of garbage (NaN, huge) are estimated as the
  demonstrations cut to their recorded steps: the same weights and states, the padded states
  zero and marked unrecorded."""
  data = _dataset(env)
  want = _run(env, data, _toy_log_prob, 3, estimator)
  for garbage in (np.nan, 1e4):
    got = _run(env, _padded(data, 3, garbage), _toy_log_prob, 3, estimator)
    np.testing.assert_allclose(got.weights, want.weights, rtol=1e-6)
    np.testing.assert_array_equal(got.obs[:, :, :H], want.obs)
    assert not np.asarray(got.obs[:, :, H:]).any()
    np.testing.assert_array_equal(got.steps, np.broadcast_to(np.arange(H + 3) < H,
                                                             got.obs.shape[:3]))
  assert want.steps is None


@pytest.mark.slow  # > 3 s: trains the critic twice
def test_unrecorded_steps_do_not_reach_the_learned_estimator(env):
  """The critic trains on recorded steps only: what the padding holds changes nothing."""
  data = _dataset(env)
  nan, huge = (_run(env, _padded(data, 3, g), _toy_log_prob, 3, "learned") for g in (np.nan, 1e4))
  np.testing.assert_array_equal(nan.weights, huge.weights)
  assert np.isfinite(np.asarray(nan.weights)).all()


@pytest.mark.slow  # > 3 s
def test_oracle_returns_the_experts_states_with_equal_weights(env):
  key = jax.random.PRNGKey(3)
  occ = _run(env, _dataset(env), _toy_log_prob, num_samples=3, estimator="oracle", key=key)
  # Each task's episodes come from its own key (`amf.keys.by_value`), split per episode.
  per_task = lambda k, c: jax.vmap(lambda k: rollout(env, env.expert, k, c))(
      jax.random.split(k, 3))
  expert = jax.vmap(per_task)(keys.by_value(key, env.tasks), env.tasks)
  assert occ.obs.shape == (4, 3, H, 2)
  np.testing.assert_allclose(occ.obs, expert.obs, rtol=1e-6)
  np.testing.assert_allclose(occ.weights, 1.0 / 3)
  # The expert moves towards each task's own goal, so the tasks' states differ.
  assert not np.allclose(occ.obs[0, :, -1], occ.obs[2, :, -1], atol=0.1)


@pytest.mark.parametrize("name", ["learnt", "Importance", ""])
def test_unknown_estimator_raises(name):
  with pytest.raises(ValueError, match="occupancy estimator"):
    occupancy.get(name)


@pytest.mark.slow  # > 3 s: compiles five estimators, the critic's training included
def test_only_the_reusing_estimators_keep_past_demonstrations(env):
  """`get` names every estimator; those in `REUSING` draw their states from the dataset, the
  others (the policy's rollouts, the expert's oracle) from new episodes."""
  data = _dataset(env)
  demos = {tuple(np.asarray(o).ravel().round(5)) for o in data.obs[:3]}
  ctx = occupancy.Context(env, data, _toy_log_prob, 2, lambda s, phi: 0.3 * (phi - s),
                          occupancy.Critic(hidden=(8,), steps=5, batch_size=8))
  assert sorted(occupancy.ESTIMATORS) == ["importance", "learned", "oracle", "rollout", "uniform"]
  for name in occupancy.ESTIMATORS:
    occ = jax.jit(lambda k: occupancy.get(name)(ctx, k)(env.tasks))(jax.random.PRNGKey(0))
    assert occ.obs.shape == (4, 2, H, 2) and occ.weights.shape == (4, 2), name
    kept = {tuple(np.asarray(o).ravel().round(5)) for o in occ.obs.reshape(-1, H * 2)}
    assert (kept <= demos) == (name in occupancy.REUSING), name


def test_uniform_estimator_draws_filled_demos_with_equal_weights(env):
  data = _dataset(env)
  occ = _run(env, data, _toy_log_prob, num_samples=2, estimator="uniform")
  np.testing.assert_allclose(occ.weights, 0.5)
  filled = {tuple(np.asarray(data.obs[i]).ravel()) for i in range(3)}
  for c in range(env.num_tasks):
    for j in range(2):
      assert tuple(np.asarray(occ.obs[c, j]).ravel()) in filled  # never the empty slot
  # With m above the number of demos the empty slot gets weight exactly 0.
  occ = _run(env, data, _toy_log_prob, num_samples=4, estimator="uniform")
  np.testing.assert_allclose(np.sort(np.asarray(occ.weights), -1), [[0, 1 / 3, 1 / 3, 1 / 3]] * 4,
                             atol=1e-6)


def test_rollout_estimator_uses_the_policy_states(env):
  act = lambda s, phi: 0.3 * (phi - s)
  ctx = occupancy.Context(env, _dataset(env), _toy_log_prob, 3, act)
  key = jax.random.PRNGKey(5)
  occ = occupancy.rollout(ctx, key)(env.tasks)
  assert occ.obs.shape == (env.num_tasks, 3, H, 2)
  # Each episode follows the policy in its own task: s' = s + clip(act(s, phi(c))).
  phi = jax.vmap(env.task_features)(env.tasks)[:, None]
  step = np.clip(0.3 * (np.asarray(phi) - np.asarray(occ.obs[:, :, 0])), -env.max_action,
                 env.max_action)
  np.testing.assert_allclose(occ.obs[:, :, 1], occ.obs[:, :, 0] + step, rtol=1e-5, atol=1e-6)
  assert np.asarray(occ.obs[:, :, 0]).std(1).min() > 0  # episodes start apart
  np.testing.assert_allclose(occ.weights, 1 / 3)
  with pytest.raises(ValueError, match="needs the policy's `act`"):
    occupancy.rollout(ctx._replace(act=None), key)


@pytest.mark.parametrize("estimator", ["uniform", "rollout", "oracle"])
def test_random_estimates_follow_the_task_not_its_row(env, estimator):
  """A task's random estimate is keyed by the task (`amf.keys.by_value`): the same as a
  target and as a candidate, whatever its row and whichever tasks are estimated beside it."""
  ctx = occupancy.Context(env, _dataset(env), _toy_log_prob, 2, lambda s, phi: 0.3 * (phi - s))
  fit = occupancy.get(estimator)(ctx, jax.random.PRNGKey(7))
  order = jnp.array([2, 0, 3, 1])
  whole, permuted = jax.jit(fit)(env.tasks), jax.jit(fit)(env.tasks[order])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a[order], b, rtol=1e-6), whole, permuted)
  alone = jax.jit(fit)(env.tasks[3:])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a[3:], b, rtol=1e-6), whole, alone)


@pytest.mark.slow  # > 3 s: trains the critic
def test_learned_estimator_weights_each_task_towards_its_own_demos():
  """Integrator demos of different tasks head to different goals; a density ratio learned from
  the states alone must put most of each task's weight on its own demos."""
  env = Integrator(num_tasks=4, horizon=8)
  ids = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
  data = demonstrate(env, jax.random.PRNGKey(0), ids)
  ctx = occupancy.Context(env, data, _toy_log_prob, 2)
  occ = jax.jit(lambda k: occupancy.learned(ctx, k)(env.tasks))(jax.random.PRNGKey(1))
  assert occ.obs.shape == (4, 2, 8, 2)
  np.testing.assert_allclose(occ.weights.sum(-1), 1.0, rtol=1e-5)
  # Each task's kept demos are its own two: the same final states as the task's demos.
  for c in range(4):
    own = np.asarray(data.obs[2 * c:2 * c + 2, -1])
    kept = np.asarray(occ.obs[c, :, -1])
    assert min(np.abs(kept[j] - own).sum(-1).min() for j in range(2)) < 1e-6
    np.testing.assert_allclose(np.sort(kept, 0), np.sort(own, 0), atol=1e-6)


@pytest.mark.slow  # > 3 s: trains the critic
def test_learned_estimator_is_flat_when_states_do_not_depend_on_the_task(env):
  """The same trajectory under every task label: no ratio to learn, near-equal weights."""
  data = _dataset(env)
  data = data._replace(obs=jnp.broadcast_to(data.obs[:1], data.obs.shape))
  ctx = occupancy.Context(env, data, _toy_log_prob, 3)
  occ = jax.jit(lambda k: occupancy.learned(ctx, k)(env.tasks))(jax.random.PRNGKey(2))
  np.testing.assert_allclose(occ.weights, 1 / 3, atol=0.05)
