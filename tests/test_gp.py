"""Tests of the masked GP maths (`amf/gp.py`) against brute-force conditioning."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tinygp import kernels

from amf import gp, gp_kernels

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


@pytest.fixture(scope="module")
def policy_kernel():
  """The GP policy's kernel over the integrator's 4-D inputs (s, phi)."""
  return gp_kernels.make("rbf", 2, 2, 0.5, 0.5, 1.0)


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


def test_precomputed_kernel_gives_the_same_posterior_covariance(policy_kernel):
  kernel = policy_kernel
  points = jnp.asarray(np.random.default_rng(1).normal(size=(9, 4)))
  mask = jnp.array([True, False, True, True, True, False])
  index = jnp.arange(9)
  covariance = jax.jit(gp.posterior_covariance)
  direct = covariance(kernel, points[:6], mask, 0.1, points[6:])
  indexed = covariance(gp.Precomputed(kernel(points, points)), index[:6], mask, 0.1, index[6:])
  np.testing.assert_allclose(indexed, direct, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # 6 s: the marginal-likelihood fit compiles
@pytest.mark.parametrize("noise", [0.03, 0.1, 0.3])
def test_fit_noise_recovers_the_noise_of_data_drawn_from_the_model(noise):
  """Targets drawn from `s^2 (K + noise^2 I)` (any scale s): the marginal-likelihood noise
  is the one they were drawn with, to within the grid's spacing (a factor 1.78 in std)."""
  rng = np.random.default_rng(0)
  x = rng.uniform(-3, 3, size=(300, 1))
  gram = np.asarray(kernels.ExpSquared(scale=1.0)(x, x)) + 1e-6 * np.eye(300)
  chol = np.linalg.cholesky(gram + noise ** 2 * np.eye(300))
  y = 5.0 * chol @ rng.normal(size=(300, 3)) + 2.0  # a scale and an offset the fit ignores
  mask = np.arange(300) < 280  # masked rows are left out
  y[~mask] = 100.0
  fitted = float(gp.fit_noise(jnp.asarray(gram, jnp.float32), jnp.asarray(y, jnp.float32),
                              jnp.asarray(mask)))
  assert noise / 1.8 < fitted < noise * 1.8, fitted
