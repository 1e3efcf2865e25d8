"""Kernel approximations of a neural policy: each against a hand-written reference, and all PSD."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from amf import nn_kernels
from amf.nt import stax

D, A, HIDDEN = 5, 2, (16, 16)
SLOW_KERNELS = ("loss_gradient", "dropout")  # > 3 s each in the last test (marked slow)


@pytest.fixture(scope="module")
def setup():
  module, spec = nn_kernels.mlp_spec(HIDDEN, A)
  x1, x2 = jax.random.normal(jax.random.PRNGKey(0), (2, 12, D))
  x2 = x2[:7]
  # Two parameter sets, stacked, for the vmap tests; the others use the first.
  stacked = jax.jit(jax.vmap(module.init, (0, None)))(jax.random.split(jax.random.PRNGKey(1)),
                                                      x1[0])
  return spec, stacked, _index(stacked, 0), x1, x2


def _index(tree, i):
  return jax.tree_util.tree_map(lambda leaf: leaf[i], tree)


def test_spec_matches_module(setup):
  spec, _, params, x1, _ = setup
  module = nn_kernels.MLP(HIDDEN, A)
  assert set(params["params"]) == {"layers_0", "layers_1", "head"}
  np.testing.assert_allclose(spec.apply(params, x1[0]), module.apply(params, x1)[0], rtol=1e-6)
  features = spec.features(params, x1[0])
  head = params["params"]["head"]
  np.testing.assert_allclose(features @ head["kernel"] + head["bias"], spec.apply(params, x1[0]),
                             rtol=1e-5, atol=1e-6)


def test_ntk_is_jacobian_contraction(setup):
  spec, _, params, x1, x2 = setup
  flat, unravel = ravel_pytree(params)
  jac = jax.jit(jax.jacrev(lambda w, x: jax.vmap(spec.apply, (None, 0))(unravel(w), x)))
  expected = jnp.einsum("iap,jap->ij", jac(flat, x1), jac(flat, x2)) / A
  actual = jax.jit(nn_kernels.ntk, static_argnums=0)(spec, params, x1, x2, None)
  np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_last_layer_is_feature_inner_product(setup):
  spec, _, params, x1, x2 = setup
  h1, h2 = (jnp.stack([spec.features(params, x) for x in xs]) for xs in (x1, x2))
  np.testing.assert_allclose(nn_kernels.last_layer(spec, params, x1, x2, None), h1 @ h2.T,
                             rtol=1e-5, atol=1e-5)


def _bc_head_gradients(spec, params, x, y):
  """Flattened gradients (n, P) of the BC loss 0.5||y - f(x)||^2 in the last layer's params."""
  def loss(head, x, y):
    full = {**params, "params": {**params["params"], spec.last_layer: head}}
    return 0.5 * jnp.sum((y - spec.apply(full, x)) ** 2)

  grads = jax.vmap(jax.grad(loss), (None, 0, 0))(params["params"][spec.last_layer], x, y)
  return jax.vmap(lambda g: ravel_pytree(g)[0])(grads)


def test_loss_gradient_is_the_closed_form_of_the_derivation(setup):
  """sigma^2 (phi(x) . phi(x') + 1): the last-layer kernel with a bias feature."""
  spec, _, params, x1, x2 = setup
  sigma = 0.5
  h1, h2 = (jax.vmap(spec.features, (None, 0))(params, x) for x in (x1, x2))
  actual = jax.jit(nn_kernels.loss_gradient, static_argnums=(0, 5))(
      spec, params, x1, x2, None, nn_kernels.Hyper(sigma=sigma))
  np.testing.assert_allclose(actual, sigma ** 2 * (h1 @ h2.T + 1.0), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # 4 s of compilation; the closed-form test is its fast counterpart
def test_loss_gradient_is_the_expected_bc_gradient_inner_product(setup):
  """BC-loss gradients at pseudo-labels y = f(x) + sigma * eps, one eps per draw shared by all
  inputs: each draw's Gram matrix is the kernel times |eps|^2 / a exactly, and their mean over
  draws converges to the kernel (the expectation the kernel is)."""
  spec, _, params, x1, x2 = setup
  sigma = 0.5
  kernel = nn_kernels.loss_gradient(spec, params, x1, x2, None, nn_kernels.Hyper(sigma=sigma))
  f = lambda x: jax.vmap(spec.apply, (None, 0))(params, x)

  @jax.jit
  def draw(key):
    eps = jax.random.normal(key, (A,))
    g1, g2 = (_bc_head_gradients(spec, params, x, f(x) + sigma * eps) for x in (x1, x2))
    return g1 @ g2.T / A, eps @ eps / A

  grams, scales = jax.lax.map(draw, jax.random.split(jax.random.PRNGKey(3), 2000))
  np.testing.assert_allclose(grams[0], scales[0] * kernel, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(grams.mean(0), kernel, rtol=0.1, atol=0.1 * np.abs(kernel).max())


@pytest.mark.slow  # 5 s: stax compiles the infinite-width kernels
@pytest.mark.parametrize("name", ["ntk_inf", "nngp_inf"])
def test_infinite_width_kernels_match_stax(setup, name):
  spec, _, params, x1, x2 = setup
  hyper = nn_kernels.Hyper(w_std=1.3, b_std=0.1)
  *_, kernel_fn = stax.serial(stax.Dense(16, 1.3, 0.1), stax.Relu(),
                              stax.Dense(16, 1.3, 0.1), stax.Relu(), stax.Dense(A, 1.3, 0.1))
  expected = kernel_fn(x1, x2, name.removesuffix("_inf"))
  np.testing.assert_allclose(nn_kernels.get(name)(spec, params, x1, x2, None, hyper), expected,
                             rtol=1e-5, atol=1e-6)


def test_linear_is_scaled_dot_product(setup):
  spec, _, params, x1, x2 = setup
  np.testing.assert_allclose(nn_kernels.linear(spec, params, x1, x2, None), x1 @ x2.T / D,
                             rtol=1e-5, atol=1e-6)
  hyper = nn_kernels.Hyper(w_std=2.0, b_std=0.5)
  np.testing.assert_allclose(nn_kernels.linear(spec, params, x1, x2, None, hyper),
                             4.0 * x1 @ x2.T / D + 0.25, rtol=1e-5, atol=1e-5)


def test_rbf_lengthscale(setup):
  spec, _, params, x1, x2 = setup
  dist2 = np.sum((np.asarray(x1)[:, None] - np.asarray(x2)[None]) ** 2, -1)
  np.testing.assert_allclose(
      nn_kernels.rbf(spec, params, x1, x2, None, nn_kernels.Hyper(lengthscale=2.0)),
      np.exp(-dist2 / 8.0), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # 3 s of compilation
def test_random_walk_on_a_chain():
  # Inputs on a line with k = 1: the graph is a path, whose random-walk kernel is explicit.
  x = jnp.arange(4.0)[:, None]
  adjacency = np.diag(np.ones(3), 1) + np.diag(np.ones(3), -1)
  inv_sqrt = 1 / np.sqrt(adjacency.sum(1))
  laplacian = np.eye(4) - inv_sqrt[:, None] * adjacency * inv_sqrt
  expected = np.linalg.matrix_power(3.0 * np.eye(4) - laplacian, 3)
  hyper = nn_kernels.Hyper(k=1, a=3.0, p=3)
  np.testing.assert_allclose(nn_kernels.random_walk(None, None, x, x, None, hyper), expected,
                             rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_KERNELS else name
    for name in sorted(nn_kernels.KERNELS)])
def test_kernel_is_psd_jittable_and_vmappable(setup, name):
  spec, stacked, params, x1, x2 = setup
  key = jax.random.PRNGKey(6)
  kernel_fn = jax.jit(functools.partial(nn_kernels.get(name), spec))

  gram = np.asarray(nn_kernels.check_kernel(kernel_fn(params, x1, x1, key), name), np.float64)
  assert gram.shape == (12, 12)
  np.testing.assert_allclose(gram, gram.T, rtol=1e-5, atol=1e-6 * np.abs(gram).max())
  gram += nn_kernels.JITTER * np.mean(np.diag(gram)) * np.eye(12)
  eig = np.linalg.eigvalsh(gram)
  assert eig.min() >= -1e-4 * eig.max(), (name, eig)

  cross = nn_kernels.check_kernel(kernel_fn(params, x1, x2, key), name)
  assert cross.shape == (12, 7)

  keys = jax.random.split(key, 2)
  batched = jax.vmap(kernel_fn, (0, None, None, 0))(stacked, x1, x2, keys)
  for i in range(2):
    one = kernel_fn(_index(stacked, i), x1, x2, keys[i])
    np.testing.assert_allclose(batched[i], one, rtol=1e-4, atol=1e-5)
  # Only the infinite-width and input-space kernels ignore both params and key.
  ignores_both = name in ("ntk_inf", "nngp_inf", "linear", "random_walk", "rbf")
  assert np.allclose(batched[0], batched[1]) == ignores_both


def _correlation(K):
  d = jnp.sqrt(jnp.diag(K))
  return K / d[:, None] / d[None]


# The kernels that compile for seconds run with the slow suite.
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_KERNELS + ("ntk", "nngp_inf")
    else name for name in sorted(set(nn_kernels.KERNELS) - {"random_walk"})])
def test_nearby_inputs_are_correlated(setup, name):
  """A smooth kernel tells the GP about an input from a slightly moved one."""
  spec, _, params, x1, _ = setup
  x = jnp.concatenate([x1, x1 + 1e-3])
  C = _correlation(nn_kernels.get(name)(spec, params, x, x, jax.random.PRNGKey(0)))
  assert np.all(np.diag(C[:12, 12:]) > 0.99)


def test_unknown_name_raises():
  with pytest.raises(ValueError, match="'nope'"):
    nn_kernels.get("nope")


def test_check_kernel_rejects_non_finite(setup):
  spec, _, params, x1, x2 = setup
  bad = x1.at[0, 0].set(jnp.nan)
  with pytest.raises(ValueError, match="'last_layer'.*NaN"):
    nn_kernels.check_kernel(nn_kernels.last_layer(spec, params, bad, x2, None), "last_layer")
  with pytest.raises(ValueError, match="'rbf'"):
    nn_kernels.check_kernel(jnp.array([[1.0, jnp.inf]]), "rbf")


# --- the categorical head's loss-gradient kernel ----------------------------------------------

@pytest.fixture(scope="module")
def categorical():
  """A categorical-head MLP whose head is confident, as BC leaves it (its random head weights
  times 10), and its inputs."""
  module, spec = nn_kernels.mlp_spec(HIDDEN, A, head="categorical")
  x1, x2 = jax.random.normal(jax.random.PRNGKey(0), (2, 12, D))
  params = module.init(jax.random.PRNGKey(1), x1[0])
  head = jax.tree.map(lambda w: 10.0 * w, params["params"]["head"])
  params = {"params": {**params["params"], "head": head}}
  return spec, params, x1, x2[:7]


def _label_gradients(spec, params, x, u):
  """Flattened gradients (n, P) in the last layer of the head's log-likelihood of the labels
  drawn by inverse CDFs at the uniforms `u` (a,), shared by every input."""
  def log_lik(head, x):
    full = {**params, "params": {**params["params"], spec.last_layer: head}}
    logp = spec.head.log_probs(spec.outputs(full, x))  # (a, K)
    label = jnp.minimum(jnp.sum(jnp.cumsum(jnp.exp(logp), -1) <= u[:, None], -1),
                        spec.head.bins - 1)
    return jnp.sum(jnp.take_along_axis(logp, label[:, None], -1))

  grads = jax.vmap(jax.grad(log_lik), (None, 0))(params["params"][spec.last_layer], x)
  return jax.vmap(lambda g: ravel_pytree(g)[0])(grads)


def test_categorical_loss_gradient_is_the_expected_gradient_inner_product(categorical):
  """Exactly: the expectation over one uniform shared by inputs and action dimensions (the
  kernel is a sum over dimensions, so sharing it across them changes no expectation) is a sum
  over the intervals between all CDF values, where every label is constant. By Monte Carlo:
  independent uniforms per dimension, within 5 standard errors of the mean."""
  spec, params, x1, x2 = categorical
  kernel = jax.jit(nn_kernels.loss_gradient, static_argnums=0)(spec, params, x1, x2, None)

  @jax.jit
  def gram(u):
    return _label_gradients(spec, params, x1, u) @ _label_gradients(spec, params, x2, u).T / A

  cdfs = jnp.concatenate([spec.head.cdf(jax.vmap(spec.outputs, (None, 0))(params, x))
                          for x in (x1, x2)]).reshape(-1)
  edges = jnp.sort(jnp.concatenate([jnp.array([0.0, 1.0]), jnp.clip(cdfs, 0.0, 1.0)]))
  mids, lengths = (edges[1:] + edges[:-1]) / 2, jnp.diff(edges)
  exact = jnp.einsum("q,qij->ij", lengths,
                     jax.lax.map(lambda u: gram(jnp.full(A, u)), mids))
  np.testing.assert_allclose(kernel, exact, rtol=1e-4, atol=1e-4 * np.abs(exact).max())

  draws = jax.lax.map(gram, jax.random.uniform(jax.random.PRNGKey(3), (4000, A)))
  error = draws.std(0) / np.sqrt(draws.shape[0])
  assert np.all(np.abs(draws.mean(0) - kernel) <= 5 * error + 1e-6)


def test_categorical_loss_gradient_differs_from_last_layer_beyond_a_rescaling(setup,
                                                                              categorical):
  """The fixed-std head's kernel has the correlations of the last-layer kernel with a bias
  feature; the categorical head's do not (a per-input rescaling would keep them)."""
  corr = lambda K: np.asarray(_correlation(K))
  for spec, params, x in ((setup[0], setup[2], setup[3]), categorical[:3]):
    h = jax.vmap(spec.features, (None, 0))(params, x)
    lg = corr(nn_kernels.loss_gradient(spec, params, x, x, None))
    gap = np.abs(lg - corr(h @ h.T + 1.0)).max()
    if spec.head.name == "fixed_std":
      assert gap < 1e-4
    else:
      assert gap > 0.3, gap
      assert np.abs(lg - corr(nn_kernels.last_layer(spec, params, x, x, None))).max() > 0.3


@pytest.mark.parametrize("name", ["loss_gradient", "last_layer", "ntk", "dropout"])
def test_kernels_of_the_categorical_head_are_psd_and_vmappable(categorical, name):
  """Over 40 inputs, more than one row block of `loss_gradient`'s map."""
  spec, params, x1, _ = categorical
  x = jnp.concatenate([x1, x1 + 0.5, x1 - 0.5, x1[:4] * 2])
  kernel_fn = jax.jit(functools.partial(nn_kernels.get(name), spec))
  gram = np.asarray(nn_kernels.check_kernel(kernel_fn(params, x, x, jax.random.PRNGKey(6)),
                                            name), np.float64)
  np.testing.assert_allclose(gram, gram.T, rtol=1e-5, atol=1e-6 * np.abs(gram).max())
  eig = np.linalg.eigvalsh(gram + nn_kernels.JITTER * np.mean(np.diag(gram)) * np.eye(40))
  assert eig.min() >= -1e-4 * eig.max()
  stacked = jax.tree.map(lambda p: jnp.stack([p, 0.5 * p]), params)
  batched = jax.vmap(kernel_fn, (0, None, None, None))(stacked, x, x[:7], jax.random.PRNGKey(6))
  np.testing.assert_allclose(batched[0], gram[:, :7], rtol=1e-4, atol=1e-5 * np.abs(gram).max())
