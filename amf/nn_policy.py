"""AMF-NN's policy: an MLP over `x = (s, phi(c))` with a Gaussian head (docs/design.md §3).

The head's standard deviation is fixed (`action_std`, as in the GP policy) rather than learned:
the expert is deterministic, so a learned std would only shrink towards zero and rescale the
BC gradients, and a fixed std makes the Gaussian NLL the squared error up to a constant.
"""
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from amf.policies import gaussian_log_prob, policy_inputs


class MLP(nn.Module):
  """ReLU hidden layers of widths `hidden`, then a linear layer of width `out` named "head".

  `features` are the penultimate activations the kernels of `amf.nn_kernels` read; `rate > 0`
  applies inverted dropout after each hidden layer (MC-dropout, from the "dropout" rng).
  """
  hidden: Sequence[int]
  out: int

  def setup(self):
    self.layers = [nn.Dense(width) for width in self.hidden]
    self.head = nn.Dense(self.out)

  def features(self, x, rate: float = 0.0):
    for layer in self.layers:
      x = nn.relu(layer(x))
      if rate:
        keep = jax.random.bernoulli(self.make_rng("dropout"), 1.0 - rate, x.shape)
        x = jnp.where(keep, x / (1.0 - rate), 0.0)
    return x

  def __call__(self, x, rate: float = 0.0):
    return self.head(self.features(x, rate))


class NNPolicy(NamedTuple):
  """An MLP policy `f_theta(s, phi(c))`; `phi` broadcasts over the leading axes of `obs`."""
  module: MLP
  obs_size: int
  feature_size: int
  action_std: float

  def init(self, key: jax.Array):
    return self.module.init(key, jnp.zeros(self.obs_size + self.feature_size))

  def act(self, params, obs: jax.Array, phi: jax.Array) -> jax.Array:
    """The mean action: the deterministic action used for evaluation."""
    return self.module.apply(params, policy_inputs(obs, phi))

  def log_prob(self, params, obs, phi, action) -> jax.Array:
    return gaussian_log_prob(self.act(params, obs, phi), action, self.action_std)


def make_policy(obs_size: int, feature_size: int, action_size: int,
                hidden: Sequence[int] = (256, 256), action_std: float = 0.05) -> NNPolicy:
  return NNPolicy(MLP(tuple(hidden), action_size), obs_size, feature_size, action_std)
