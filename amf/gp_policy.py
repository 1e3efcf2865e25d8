"""AMF-GP's policy: the posterior mean of a GP model of the expert (AMF.md §4).

Fine-tuning is conditioning: `fit(data)` conditions the GP on every demonstration so far.
The same GP gives the policy's Gaussian likelihood (for importance weights) and the
posterior covariance AMF scores candidates with.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
from tinygp import kernels

from amf import gp
from amf.data import Dataset, flat_pairs
from amf.envs.base import MultiTaskEnv


def policy_inputs(obs: jax.Array, task_features: jax.Array) -> jax.Array:
  """`x = (s, phi(c))`, broadcasting `task_features` over the leading axes of `obs`."""
  phi = jnp.broadcast_to(task_features, obs.shape[:-1] + task_features.shape[-1:])
  return jnp.concatenate([obs, phi], -1)


def dataset_inputs(env: MultiTaskEnv, data: Dataset) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Flattened `(inputs (M*H, d), actions (M*H, a), mask (M*H,))` of a dataset."""
  obs, phi, actions, mask = flat_pairs(data, env.task_features)
  return policy_inputs(obs, phi), actions, mask


class GPPolicy(NamedTuple):
  """A GP over `(s, phi(c))` with observation noise `noise` and action noise `action_std`."""
  env: MultiTaskEnv
  kernel: kernels.Kernel
  noise: float
  action_std: float

  def fit(self, data: Dataset) -> gp.Posterior:
    inputs, actions, mask = dataset_inputs(self.env, data)
    return gp.posterior(self.kernel, inputs, actions, mask, self.noise)

  def act(self, posterior: gp.Posterior, obs: jax.Array, task_features: jax.Array) -> jax.Array:
    return posterior.mean(policy_inputs(obs, task_features))

  def log_prob(self, posterior: gp.Posterior, obs, task_features, action) -> jax.Array:
    """Gaussian log-likelihood of `action` around the posterior mean, std `action_std`."""
    mean = self.act(posterior, obs, task_features)
    return jax.scipy.stats.norm.logpdf(action, mean, self.action_std).sum()

  def covariance(self, posterior: gp.Posterior, data: Dataset, query: jax.Array) -> jax.Array:
    """Posterior covariance of the expert model at inputs `query` given `data`."""
    del posterior  # The GP's covariance depends on the inputs alone.
    inputs, _, mask = dataset_inputs(self.env, data)
    return gp.posterior_covariance(self.kernel, inputs, mask, self.noise, query)
