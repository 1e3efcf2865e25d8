"""AMF-GP's policy: the posterior mean of a GP model of the expert (docs/design.md §3).

Fine-tuning is conditioning: the learner's state is the GP conditioned on every demonstration
so far. The same GP gives the policy's Gaussian likelihood (for importance weights) and the
posterior covariance AMF scores candidates with.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
from tinygp import kernels

from amf import gp
from amf.data import Dataset, concat, dataset_inputs
from amf.envs.base import MultiTaskEnv
from amf.policies import gaussian_log_prob, policy_inputs


class GPFit(NamedTuple):
  """The GP conditioned on a dataset: its inputs (N, d) and `(K + noise)^-1 Y` (N, a)."""
  inputs: jax.Array
  coef: jax.Array


class GPPolicy(NamedTuple):
  """A GP over `(s, phi(c))` with observation noise `noise` and action noise `action_std`.

  A learner of `amf.active` whose state is a `GPFit`; it has one kernel, `kernel`.
  """
  env: MultiTaskEnv
  kernel: kernels.Kernel
  noise: float
  action_std: float
  kernels = ("gp",)  # the names `amf.active` indexes; one here

  def fit(self, data: Dataset) -> GPFit:
    inputs, actions, mask = dataset_inputs(self.env, data)
    return GPFit(inputs, gp.posterior(self.kernel, inputs, actions, mask, self.noise).coef)

  def init(self, data: Dataset, key: jax.Array) -> GPFit:
    del key
    return self.fit(data)

  def update(self, fit: GPFit, pretrain: Dataset, new: Dataset, key: jax.Array) -> GPFit:
    del fit, key  # Conditioning on everything is exact; nothing carries over.
    return self.fit(concat(pretrain, new))

  def act(self, fit: GPFit, obs: jax.Array, task_features: jax.Array) -> jax.Array:
    return gp.Posterior(self.kernel, *fit).mean(policy_inputs(obs, task_features))

  def log_prob(self, fit: GPFit, obs, task_features, action) -> jax.Array:
    """Gaussian log-likelihood of `action` around the posterior mean, std `action_std`."""
    return gaussian_log_prob(self.act(fit, obs, task_features), action, self.action_std)

  def covariance(self, fit: GPFit, data: Dataset, query: jax.Array, key: jax.Array,
                 kernel: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(posterior covariance, prior variances, noise std)` of the expert model at `query`
    given `data`: the policy's own GP, with its own noise."""
    del fit, key, kernel  # The GP's covariance depends on the inputs alone.
    inputs, _, mask = dataset_inputs(self.env, data)
    return (gp.posterior_covariance(self.kernel, inputs, mask, self.noise, query),
            gp.prior_variance(self.kernel, query), jnp.asarray(self.noise))

  def model(self, fit: GPFit, data: Dataset, key: jax.Array, kernel: jax.Array) -> gp.Model:
    """The same GP model, factorised once over `data` (`gp.Model`)."""
    del fit, key, kernel
    inputs, _, mask = dataset_inputs(self.env, data)
    return gp.model(self.kernel, inputs, mask, self.noise)
