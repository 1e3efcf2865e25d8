"""Gaussian-process maths on masked, fixed-size data, through tinygp.

Datasets have static shapes; empty slots are masked. A masked observation gets a huge noise
variance, which removes it from the posterior (to float precision) without changing shapes.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tinygp import GaussianProcess, kernels

# Noise variance of a masked observation: its weight in the posterior is ~ k^2 / _MASKED_NOISE.
_MASKED_NOISE = 1e9
# Posterior variances below this fraction of the prior variance count as zero. In float32
# `k - k_xD (K + s^2 I)^-1 k_Dx` cancels terms of the prior's size, with absolute errors of
# about 2-4e-7 of it (measured against float64 on clusters of 50-400 inputs); an absolute floor
# of 1e-9 let such round-off divide into log-ratios of several nats.
RELATIVE_VARIANCE_FLOOR = 1e-5


def prior(kernel: kernels.Kernel, inputs: jax.Array, mask: jax.Array,
          noise: float) -> GaussianProcess:
  """The GP over `inputs` (n, d) with noise variance `noise**2` on the unmasked ones."""
  return GaussianProcess(kernel, inputs, diag=jnp.where(mask, noise ** 2, _MASKED_NOISE))


class Posterior(NamedTuple):
  """A GP posterior mean with one output per column of the observations."""
  kernel: kernels.Kernel
  inputs: jax.Array  # (n, d)
  coef: jax.Array    # (n, outputs): (K + noise)^-1 Y, the mean's weights on the data

  def mean(self, x: jax.Array) -> jax.Array:
    """Posterior mean at one input `x` (d,), shape (outputs,)."""
    return self.kernel(x[None], self.inputs)[0] @ self.coef


def posterior(kernel: kernels.Kernel, inputs: jax.Array, targets: jax.Array, mask: jax.Array,
              noise: float) -> Posterior:
  """Conditions independent GPs (shared kernel, one per column of `targets`) on the data."""
  gp = prior(kernel, inputs, mask, noise)
  targets = jnp.where(mask[:, None], targets, 0.0)
  # One Cholesky factor (tinygp's solver) serves every output column.
  coef = gp.solver.solve_triangular(gp.solver.solve_triangular(targets), transpose=True)
  return Posterior(kernel, inputs, coef)


class Precomputed(kernels.Kernel):
  """A kernel given by its Gram matrix over a fixed set of points; inputs are row indices.

  It lets tinygp do the GP maths for kernels computed elsewhere (e.g. a network's kernels).
  """
  gram: jax.Array

  def evaluate(self, X1, X2):
    return self.gram[X1, X2]


def posterior_covariance(kernel: kernels.Kernel, inputs: jax.Array, mask: jax.Array,
                         noise: float, query: jax.Array) -> jax.Array:
  """Posterior covariance `Sigma_D(Z, Z)` of the latent function at `query` (m, d)."""
  gp = prior(kernel, inputs, mask, noise)
  # diag=0: the latent function's covariance, without tinygp's default jitter on the query.
  return gp.condition(jnp.zeros(inputs.shape[0]), query, diag=0.0,
                      include_mean=False).gp.covariance


def prior_variance(kernel: kernels.Kernel, query: jax.Array) -> jax.Array:
  """`k(z, z)` at each row of `query` (m,)."""
  return jax.vmap(kernel.evaluate)(query, query)


def variance_floor(prior_var: jax.Array) -> jax.Array:
  """The posterior variance below which an input counts as known (`RELATIVE_VARIANCE_FLOOR`)."""
  return RELATIVE_VARIANCE_FLOOR * prior_var



class Function(kernels.Kernel):
  """A kernel given by a batched function `fn(x1 (n, d), x2 (m, d)) -> (n, m)` (e.g. a
  network's kernels), so tinygp can do the GP maths for it."""
  fn: Callable[[jax.Array, jax.Array], jax.Array]

  def __call__(self, X1, X2=None):
    if X2 is None:
      return jax.vmap(lambda x: self.fn(x[None], x[None])[0, 0])(X1)
    return self.fn(X1, X2)

  def evaluate(self, X1, X2):
    return self.fn(X1[None], X2[None])[0, 0]


class Model(NamedTuple):
  """A GP prior conditioned on noisy observations, factorised once (tinygp's Cholesky).

  `cov(a, b) = K(a, b) - whiten(a)^T whiten(b)` for query sets `a`, `b`: each query set pays
  only for its own part, however many a round asks about (the continuous task search scores
  one per ascent step). `jitter` is added to the prior variances of the observed inputs and
  of a query set's own inputs (as a learner adds it to every Gram matrix it factorises).
  """
  prior: GaussianProcess  # over the observed inputs, with their noise
  noise: jax.Array        # () the observation noise std
  jitter: float = 0.0

  def whiten(self, query: jax.Array) -> jax.Array:
    """`L^-1 K(observed, query)`, (N, m)."""
    return self.prior.solver.solve_triangular(self.prior.kernel(self.prior.X, query))

  def cross(self, a: jax.Array, half_a: jax.Array, b: jax.Array,
            half_b: jax.Array) -> jax.Array:
    """Posterior covariance between query sets `a` and `b` (no input shared), given their
    `whiten`ed parts."""
    return self.prior.kernel(a, b) - half_a.T @ half_b

  def own(self, query: jax.Array, half: jax.Array) -> jax.Array:
    """Posterior covariance within one query set, given its `whiten`ed part."""
    return (self.prior.kernel(query, query) + self.jitter * jnp.eye(query.shape[0])
            - half.T @ half)

  def prior_variance(self, query: jax.Array) -> jax.Array:
    return self.prior.kernel(query) + self.jitter


def model(kernel: kernels.Kernel, inputs: jax.Array, mask: jax.Array, noise: float,
          jitter: float = 0.0, gram: jax.Array | None = None) -> Model:
  """The `Model` of `kernel` conditioned on the unmasked `inputs` with noise std `noise`
  (`gram`: `kernel(inputs, inputs)` if already computed)."""
  diag = jnp.where(mask, noise ** 2 + jitter, _MASKED_NOISE)
  return Model(GaussianProcess(kernel, inputs, diag=diag, covariance_value=(
      None if gram is None else gram + jnp.diag(diag))), jnp.asarray(noise), jitter)


# Noise variances, relative to the kernel's scale, that `fit_noise` chooses among: stds of
# 0.01 to 1 in 17 log-spaced steps.
NOISE_GRID = tuple(float(v) for v in 10.0 ** np.linspace(-4.0, 0.0, 17))


def fit_noise(gram: jax.Array, targets: jax.Array, mask: jax.Array,
              grid=NOISE_GRID) -> jax.Array:
  """The observation noise std (relative to the kernel's scale) of maximal marginal likelihood.

  Each column of `targets` (n, a), centred over the unmasked rows, is an independent GP with
  covariance `s^2 (gram + r I)`; the signal scale `s^2` has a closed-form maximiser for each
  noise ratio `r`, so the profile likelihood is compared over `r` in `grid` (a grid: a
  gradient method could stall on its flat stretches). Returns `sqrt(r*)`.
  """
  n, a = jnp.maximum(mask.sum(), 1), targets.shape[1]
  mean = jnp.sum(jnp.where(mask[:, None], targets, 0.0), 0) / n
  y = jnp.where(mask[:, None], targets - mean, 0.0)
  index = jnp.arange(gram.shape[0])

  def profile(r):
    solver = prior(Precomputed(gram), index, mask, jnp.sqrt(r)).solver
    scale = jnp.sum(solver.solve_triangular(y) ** 2) / (n * a)
    # Masked rows add a constant to the normalisation (their variance does not depend on r).
    return -0.5 * n * a * jnp.log(scale) - a * solver.normalization()

  ratios = jnp.asarray(grid)
  return jnp.sqrt(ratios[jnp.argmax(jax.vmap(profile)(ratios))])
