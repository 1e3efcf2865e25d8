"""AMF-GP's policy: the posterior mean of a GP model of the expert (AMF.md §4).

Fine-tuning is conditioning: the learner's state is the GP conditioned on every demonstration
so far. The same GP gives the policy's Gaussian likelihood (for importance weights) and the
posterior covariance AMF scores candidates with.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
from tinygp import kernels

from amf import gp
from amf.data import Dataset, concat, flat_pairs
from amf.envs.base import MultiTaskEnv


def policy_inputs(obs: jax.Array, task_features: jax.Array) -> jax.Array:
  """`x = (s, phi(c))`, broadcasting `task_features` over the leading axes of `obs`."""
  phi = jnp.broadcast_to(task_features, obs.shape[:-1] + task_features.shape[-1:])
  return jnp.concatenate([obs, phi], -1)


def dataset_inputs(env: MultiTaskEnv, data: Dataset) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Flattened `(inputs (M*H, d), actions (M*H, a), mask (M*H,))` of a dataset."""
  obs, phi, actions, mask = flat_pairs(data, env.task_features)
  return policy_inputs(obs, phi), actions, mask


class GPFit(NamedTuple):
  """The GP conditioned on a dataset: its inputs (N, d) and `(K + noise)^-1 Y` (N, a)."""
  inputs: jax.Array
  alpha: jax.Array


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
    return GPFit(inputs, gp.posterior(self.kernel, inputs, actions, mask, self.noise).alpha)

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
    mean = self.act(fit, obs, task_features)
    return jax.scipy.stats.norm.logpdf(action, mean, self.action_std).sum()

  def covariance(self, fit: GPFit, data: Dataset, query: jax.Array, key: jax.Array,
                 kernel: jax.Array) -> jax.Array:
    """Posterior covariance of the expert model at inputs `query` given `data`."""
    del fit, key, kernel  # The GP's covariance depends on the inputs alone.
    inputs, _, mask = dataset_inputs(self.env, data)
    return gp.posterior_covariance(self.kernel, inputs, mask, self.noise, query)
