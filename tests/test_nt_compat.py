"""neural-tangents through `amf.nt`: imports without TensorFlow, and computes the right kernels."""
import importlib.util
import subprocess
import sys

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from jax.interpreters import ad

from amf import nt_compat
from amf.nt import empirical_ntk_fn, nt, stax

Impl = nt.NtkImplementation


def test_imports_without_tensorflow():
  assert "tensorflow" not in sys.modules
  assert importlib.util.find_spec("tensorflow") is None
  with pytest.raises(AttributeError, match="TensorFlow"):
    nt.experimental.empirical_ntk_fn_tf  # pylint: disable=pointless-statement


@pytest.mark.slow  # a fresh interpreter imports JAX and neural-tangents (3 s)
def test_importing_amf_is_enough_for_neural_tangents():
  """In a fresh interpreter: `import amf`, then neural-tangents itself, directly."""
  code = ("import amf, sys; assert 'neural_tangents' not in sys.modules; "
          "import neural_tangents; print(neural_tangents.stax.Relu.__name__)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == "Relu"


def test_apply_twice_is_harmless():
  patched = (jax.core.Jaxpr, sys.modules["jax.util"], ad.zeros_like_p,
             sys.modules["neural_tangents.experimental"])
  nt_compat.apply()
  nt_compat.apply()
  assert (jax.core.Jaxpr, sys.modules["jax.util"], ad.zeros_like_p,
          sys.modules["neural_tangents.experimental"]) == patched
  assert jax.core.Jaxpr is jax.extend.core.Jaxpr
  # NT keyed its rule tables on the primitive at import; it must not be replaced.
  from neural_tangents._src.utils import rules  # pylint: disable=g-import-not-at-top
  assert ad.zeros_like_p in rules.JACOBIAN_RULES


class _MLP(nn.Module):

  @nn.compact
  def __call__(self, x):
    for _ in range(2):
      x = jnp.tanh(nn.Dense(16)(x))
    return nn.Dense(2)(x)


@pytest.fixture(scope="module")
def mlp_and_data():
  model = _MLP()
  x1 = jax.random.normal(jax.random.key(1), (5, 3))
  x2 = jax.random.normal(jax.random.key(2), (4, 3))
  params = jax.jit(model.init)(jax.random.key(0), x1)
  return model.apply, params, x1, x2


def _ntk_by_hand(apply_fn, params, x1, x2):
  """K[i, j, a, b] = sum_p J[i, a, p] J[j, b, p], with J over the flattened params."""
  flat, unravel = ravel_pytree(params)
  jac = jax.jit(jax.jacrev(lambda p, x: apply_fn(unravel(p), x)))
  j = jac(flat, jnp.concatenate([x1, x2]))  # (N1 + N2, out, P)
  return jnp.einsum("iap,jbp->ijab", j[:len(x1)], j[len(x1):])


# `None`: the helper's default, JACOBIAN_CONTRACTION.
@pytest.mark.parametrize("impl", [None, Impl.NTK_VECTOR_PRODUCTS])
def test_empirical_ntk_matches_jacobian_contraction(impl, mlp_and_data):
  apply_fn, params, x1, x2 = mlp_and_data
  expected = _ntk_by_hand(apply_fn, params, x1, x2)
  impl_kw = {} if impl is None else {"implementation": impl}
  ntk_fn = lambda **kw: jax.jit(empirical_ntk_fn(apply_fn, **impl_kw, **kw))
  full = ntk_fn(trace_axes=())(x1, x2, params)
  chex.assert_trees_all_close(full, expected, rtol=1e-5, atol=1e-5)
  # NT's "trace" over output axes is normalised by their size: the mean of the diagonal.
  traced = ntk_fn()(x1, x2, params)
  chex.assert_trees_all_close(traced, jnp.einsum("ijaa->ij", expected) / 2,
                              rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", [Impl.AUTO, Impl.STRUCTURED_DERIVATIVES, 0, 3])
def test_empirical_ntk_rejects_unsupported(impl):
  with pytest.raises(ValueError, match="STRUCTURED_DERIVATIVES"):
    empirical_ntk_fn(lambda p, x: x, implementation=impl)


_W_STD, _B_STD = 1.5, 0.3


def _inputs():
  rng = np.random.default_rng(0)
  return rng.normal(size=(4, 3)), rng.normal(size=(5, 3))


def test_dense_kernels_closed_form():
  x1, x2 = _inputs()
  _, _, kernel_fn = stax.Dense(1, W_std=_W_STD, b_std=_B_STD)
  k = jax.jit(kernel_fn, static_argnames="get")(x1, x2, get=("nngp", "ntk"))
  # Default 'ntk' parameterisation: weights ~ W_std / sqrt(fan_in), so the input dim divides.
  nngp = _W_STD**2 * x1 @ x2.T / x1.shape[1] + _B_STD**2
  np.testing.assert_allclose(k.nngp, nngp, rtol=1e-5)
  # One layer is linear in its parameters, whose gradients have exactly these inner products.
  np.testing.assert_allclose(k.ntk, nngp, rtol=1e-5)


def _relu_expectations(k12, k11, k22):
  """E[relu(u) relu(v)] and E[relu'(u) relu'(v)] for (u, v) ~ N(0, [[k11, k12], [k12, k22]])."""
  norms = np.sqrt(k11 * k22)
  theta = np.arccos(np.clip(k12 / norms, -1.0, 1.0))
  e_relu = norms / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * np.cos(theta))
  e_step = (np.pi - theta) / (2 * np.pi)
  return e_relu, e_step


def test_relu_network_kernels_match_arc_cosine():
  x1, x2 = _inputs()
  _, _, kernel_fn = stax.serial(
      stax.Dense(1, _W_STD, _B_STD), stax.Relu(), stax.Dense(1, _W_STD, _B_STD))
  k = jax.jit(kernel_fn, static_argnames="get")(x1, x2, get=("nngp", "ntk"))

  d = x1.shape[1]
  dense = lambda a, b: _W_STD**2 * a @ b.T / d + _B_STD**2
  k12 = dense(x1, x2)
  k11 = np.diag(dense(x1, x1))[:, None]
  k22 = np.diag(dense(x2, x2))[None, :]
  e_relu, e_step = _relu_expectations(k12, k11, k22)  # Cho & Saul arc-cosine, degrees 1 and 0
  nngp = _W_STD**2 * e_relu + _B_STD**2
  ntk = nngp + _W_STD**2 * e_step * k12  # first layer's NTK equals its NNGP
  np.testing.assert_allclose(k.nngp, nngp, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(k.ntk, ntk, rtol=1e-4, atol=1e-6)
