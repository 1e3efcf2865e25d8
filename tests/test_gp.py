"""Tests of the masked GP maths, the kernels, the GP policy and the batched-Cholesky workaround."""
import itertools
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import data as data_lib, gp, gp_kernels
from amf.envs.integrator import Integrator
from amf.data import dataset_inputs
from amf.gp_policy import GPPolicy
from amf.policies import policy_inputs

STATE, TASK = 2, 1  # d = 3
SCALES = np.array([0.7, 0.7, 1.3])  # state, state, task lengthscales
AMPLITUDE = 1.5
NOISE = 0.3


def _rbf(a, b, scales=SCALES, amplitude=AMPLITUDE):
  """Closed-form RBF with per-dimension lengthscales, float64."""
  diff = (a[:, None, :] - b[None, :, :]) / scales
  return amplitude * np.exp(-0.5 * np.sum(diff ** 2, -1))


def _reference(x, y, z, noise=NOISE):
  """Brute-force posterior mean (z, outputs) and covariance (z, z) with explicit inverses."""
  inv = np.linalg.inv(_rbf(x, x) + noise ** 2 * np.eye(len(x)))
  k_zx = _rbf(z, x)
  return k_zx @ inv @ y, _rbf(z, z) - k_zx @ inv @ k_zx.T


def _problem(seed, n=7, q=5, outputs=2):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, STATE + TASK)), rng.normal(size=(n, outputs)),
          rng.normal(size=(q, STATE + TASK)))


@jax.jit
def _fit(kernel, x, y, mask, z):
  """Posterior mean at `z` and posterior covariance over `z` (one compile for all tests)."""
  post = gp.posterior(kernel, x, y, mask, NOISE)
  return jax.vmap(post.mean)(z), gp.posterior_covariance(kernel, x, mask, NOISE, z)


@pytest.fixture(scope="module")
def kernel():
  return gp_kernels.make("rbf", STATE, TASK, 0.7, 1.3, AMPLITUDE)


def test_kernel_matches_closed_form_rbf_with_separate_scales(kernel):
  x, _, z = _problem(0)
  np.testing.assert_allclose(kernel(jnp.asarray(x), jnp.asarray(z)), _rbf(x, z), rtol=1e-5,
                             atol=1e-6)


def test_kernel_task_scale_acts_on_task_features_only():
  # Points differing only in the task feature: only the task lengthscale matters.
  a, b = np.zeros((1, 3)), np.array([[0.0, 0.0, 1.0]])
  narrow = gp_kernels.make("rbf", STATE, TASK, 10.0, 0.5)(jnp.asarray(a), jnp.asarray(b))
  wide = gp_kernels.make("rbf", STATE, TASK, 0.1, 2.0)(jnp.asarray(a), jnp.asarray(b))
  np.testing.assert_allclose(narrow, np.exp(-0.5 * 4.0), rtol=1e-5)
  np.testing.assert_allclose(wide, np.exp(-0.5 * 0.25), rtol=1e-5)


@pytest.mark.parametrize("name,closed_form", [
    ("matern32", lambda r: (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r)),
    ("matern52", lambda r: (1 + np.sqrt(5) * r + 5 * r ** 2 / 3) * np.exp(-np.sqrt(5) * r)),
])
def test_matern_kernels_use_euclidean_distance(name, closed_form):
  """Matérn is a covariance only with the Euclidean distance of the scaled inputs.

  tinygp's Matern kernels default to the L1 distance; over the 4-D integrator input (s, phi)
  that is not positive semi-definite, which makes GP posteriors NaN (next test).
  """
  x, _, z = _problem(1)
  r = np.linalg.norm((x[:, None] - z[None]) / SCALES, axis=-1)
  k = gp_kernels.make(name, STATE, TASK, 0.7, 1.3)
  np.testing.assert_allclose(k(jnp.asarray(x), jnp.asarray(z)), closed_form(r), rtol=1e-5,
                             atol=1e-6)


@pytest.mark.parametrize("name", ["rbf", "matern32", "matern52"])
def test_kernel_gram_is_positive_semidefinite_on_integrator_inputs(name):
  # The 16 vertices of a unit hypercube in (s, phi) space, as the integrator's GP sees it.
  pts = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=4)))
  k = gp_kernels.make(name, 2, 2, 1.0, 1.0)
  assert np.linalg.eigvalsh(np.asarray(k(pts, pts), np.float64)).min() > -1e-5
  cov = jax.jit(lambda k, x: gp.posterior_covariance(k, x, jnp.ones(16, bool), 0.1, x))(k, pts)
  assert np.all(np.isfinite(cov))


def test_unknown_kernel_raises_naming_it():
  with pytest.raises(ValueError, match="laplacian"):
    gp_kernels.make("laplacian", STATE, TASK, 1.0, 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_posterior_mean_matches_brute_force(kernel, seed):
  x, y, z = _problem(seed)
  mean, _ = _fit(kernel, x, y, np.ones(len(x), bool), z)
  np.testing.assert_allclose(mean, _reference(x, y, z)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_posterior_covariance_matches_brute_force(kernel, seed):
  x, _, z = _problem(seed)
  _, cov = _fit(kernel, x, np.zeros((len(x), 2)), np.ones(len(x), bool), z)
  np.testing.assert_allclose(cov, _reference(x, np.zeros((len(x), 1)), z)[1], rtol=1e-4,
                             atol=1e-4)


def test_masked_points_have_no_effect(kernel):
  x, y, z = _problem(3)
  mask = np.array([True, False, True, True, False, True, True])
  # Masked slots hold garbage: huge or NaN targets must not leak in.
  y_garbage = y.copy()
  y_garbage[1], y_garbage[4] = 1e6, np.nan
  mean, cov = _fit(kernel, x, y_garbage, mask, z)
  ref_mean, ref_cov = _reference(x[mask], y[mask], z)
  np.testing.assert_allclose(mean, ref_mean, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(cov, ref_cov, rtol=1e-4, atol=1e-4)


def test_all_masked_gives_the_prior(kernel):
  x, y, z = _problem(4)
  mean, cov = _fit(kernel, x, y, np.zeros(len(x), bool), z)
  np.testing.assert_allclose(mean, 0.0, atol=1e-6)
  np.testing.assert_allclose(cov, _rbf(z, z), rtol=1e-5, atol=1e-5)


def test_posterior_variance_shrinks_near_data(kernel):
  x, y, z = _problem(5)
  z[1] = 9.0  # far from every data point
  _, cov = _fit(kernel, x, y, np.ones(len(x), bool), np.concatenate([x[:1], z[1:]]))
  assert cov[0, 0] < 0.5 * AMPLITUDE
  np.testing.assert_allclose(cov[1, 1], AMPLITUDE, rtol=1e-4)


# --- GPPolicy -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy_setup():
  env = Integrator(horizon=4)
  kernel = gp_kernels.make("rbf", 2, 2, 0.5, 0.5, 1.0)
  policy = GPPolicy(env, kernel, noise=0.1, action_std=0.1)
  data = data_lib.concat(data_lib.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 3, 7])),
                         data_lib.empty(env, 2))
  return env, kernel, policy, data


def test_policy_inputs_broadcast_task_features():
  obs = jnp.arange(12.0).reshape(2, 3, 2)
  x = policy_inputs(obs, jnp.array([7.0, 8.0]))
  assert x.shape == (2, 3, 4)
  np.testing.assert_array_equal(x[..., :2], obs)
  np.testing.assert_array_equal(x[..., 2:], np.broadcast_to([7.0, 8.0], (2, 3, 2)))


def test_policy_act_and_log_prob_match_brute_force(policy_setup):
  env, _, policy, data = policy_setup
  inputs, actions, mask = (np.asarray(a, np.float64) for a in dataset_inputs(env, data))
  assert inputs.shape == (5 * 4, 4) and mask.sum() == 3 * 4
  x, y = inputs[mask > 0], actions[mask > 0]
  scales = np.full(4, 0.5)
  obs, phi = np.array([0.1, -0.2]), np.asarray(env.task_features(env.tasks[3]))
  q = np.concatenate([obs, phi])[None]
  inv = np.linalg.inv(_rbf(x, x, scales, 1.0) + 0.01 * np.eye(len(x)))
  mean = (_rbf(q, x, scales, 1.0) @ inv @ y)[0]
  a = np.array([0.05, 0.2])

  @jax.jit
  def act_and_log_prob(data, obs, phi, a):
    fitted = policy.fit(data)
    return policy.act(fitted, obs, phi), policy.log_prob(fitted, obs, phi, a)

  act, log_prob = act_and_log_prob(data, *map(jnp.asarray, (obs, phi, a)))
  np.testing.assert_allclose(act, mean, rtol=1e-4, atol=1e-4)
  expected = np.sum(-0.5 * ((a - mean) / 0.1) ** 2 - np.log(0.1 * np.sqrt(2 * np.pi)))
  np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-3)


def test_policy_reproduces_expert_on_its_demonstrations(policy_setup):
  env, _, policy, data = policy_setup

  @jax.jit
  def acts(data):
    fitted = policy.fit(data)
    phi = jax.vmap(env.task_features)(data.task[:3])
    return jax.vmap(jax.vmap(lambda o, p: policy.act(fitted, o, p), in_axes=(0, None)))(
        data.obs[:3], phi)

  # The GP smooths with noise 0.1, so only roughly; the expert's actions are up to 0.25.
  np.testing.assert_allclose(acts(data), data.actions[:3], atol=0.08)


def test_policy_covariance_ignores_empty_slots(policy_setup):
  env, kernel, policy, data = policy_setup
  query = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4)))
  cov = jax.jit(lambda d, q: policy.covariance(None, d, q, None, 0))(data, query)
  inputs, _, _ = dataset_inputs(env, data)
  filled = jax.jit(lambda k, x, q: gp.posterior_covariance(k, x, jnp.ones(12, bool), 0.1, q))(
      kernel, inputs[:12], query)
  np.testing.assert_allclose(cov, filled, rtol=1e-4, atol=1e-4)


def test_precomputed_kernel_gives_the_same_posterior_covariance(policy_setup):
  _, kernel, _, _ = policy_setup
  points = jnp.asarray(np.random.default_rng(1).normal(size=(9, 4)))
  mask = jnp.array([True, False, True, True, True, False])
  index = jnp.arange(9)
  covariance = jax.jit(gp.posterior_covariance)
  direct = covariance(kernel, points[:6], mask, 0.1, points[6:])
  indexed = covariance(gp.Precomputed(kernel(points, points)), index[:6], mask, 0.1, index[6:])
  np.testing.assert_allclose(indexed, direct, rtol=1e-5, atol=1e-6)


# --- jax_compat: batched Cholesky on CPU ----------------------------------------------------


def _spd_batch(seed, batch=6, n=5):
  a = np.random.default_rng(seed).normal(size=(batch, n, n))
  return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def test_vmapped_cholesky_under_jit_matches_numpy():
  mats = _spd_batch(0)
  chol = jax.jit(jax.vmap(jnp.linalg.cholesky))(jnp.asarray(mats, jnp.float32))
  np.testing.assert_allclose(chol, np.linalg.cholesky(mats), rtol=1e-4, atol=1e-4)


def test_batched_cholesky_is_lowered_as_a_loop_on_cpu():
  if jax.default_backend() != "cpu":
    pytest.skip("The workaround only replaces the CPU lowering.")
  mats = jnp.asarray(_spd_batch(1), jnp.float32)
  batched = jax.jit(jax.vmap(jnp.linalg.cholesky)).lower(mats).as_text()
  single = jax.jit(jnp.linalg.cholesky).lower(mats[0]).as_text()
  assert "while" in batched
  assert "while" not in single


_TWO_CHOLESKYS = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    import amf  # applies the workaround
    rng = np.random.default_rng(0)
    def spd(b, n):
      a = rng.normal(size=(b, n, n))
      return jnp.asarray(a @ np.swapaxes(a, -1, -2) + n * np.eye(n), jnp.float32)
    @jax.jit
    def f(a, b):
      return jax.vmap(jnp.linalg.cholesky)(a).sum() + jax.vmap(jnp.linalg.cholesky)(b).sum()
    a, b = spd(64, 32), spd(64, 32)
    for _ in range(2):
      out = jax.block_until_ready(f(a, b))
    assert np.isfinite(out)
    print("ok")
""")


def test_two_independent_batched_choleskys_do_not_deadlock():
  """The pattern that hung jaxlib 0.10 on CPU; a subprocess so a hang fails, not blocks."""
  try:
    result = subprocess.run([sys.executable, "-c", _TWO_CHOLESKYS], capture_output=True,
                            text=True, timeout=90)
  except subprocess.TimeoutExpired:
    pytest.fail("Two independent batched Choleskys in one jitted call hung (deadlock).")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().endswith("ok")
