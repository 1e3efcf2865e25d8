"""Tests of the GP kernels (`amf/gp_kernels.py`) against their closed forms."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import gp, gp_kernels

STATE, TASK = 2, 1  # d = 3
SCALES = np.array([0.7, 0.7, 1.3])  # state, state, task lengthscales
AMPLITUDE = 1.5


def _rbf(a, b, scales=SCALES, amplitude=AMPLITUDE):
  """Closed-form RBF with per-dimension lengthscales, float64."""
  diff = (a[:, None, :] - b[None, :, :]) / scales
  return amplitude * np.exp(-0.5 * np.sum(diff ** 2, -1))


def _problem(seed, n=7, q=5, outputs=2):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, STATE + TASK)), rng.normal(size=(n, outputs)),
          rng.normal(size=(q, STATE + TASK)))


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
