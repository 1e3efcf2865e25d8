"""Gaussian-process maths on masked, fixed-size data, through tinygp.

Datasets have static shapes; empty slots are masked. A masked observation gets a huge noise
variance, which removes it from the posterior (to float precision) without changing shapes.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
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
  alpha: jax.Array   # (n, outputs): (K + noise)^-1 Y

  def mean(self, x: jax.Array) -> jax.Array:
    """Posterior mean at one input `x` (d,), shape (outputs,)."""
    return self.kernel(x[None], self.inputs)[0] @ self.alpha


def posterior(kernel: kernels.Kernel, inputs: jax.Array, targets: jax.Array, mask: jax.Array,
              noise: float) -> Posterior:
  """Conditions independent GPs (shared kernel, one per column of `targets`) on the data."""
  gp = prior(kernel, inputs, mask, noise)
  targets = jnp.where(mask[:, None], targets, 0.0)
  # One Cholesky factor (tinygp's solver) serves every output column.
  alpha = gp.solver.solve_triangular(gp.solver.solve_triangular(targets), transpose=True)
  return Posterior(kernel, inputs, alpha)


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
