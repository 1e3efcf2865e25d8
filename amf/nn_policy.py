"""AMF-NN's policy: an MLP over `x = (s, phi(c))` with a likelihood head (docs/design.md §3).

The MLP's last Dense layer ("head") gives the head's raw outputs; the head turns them into the
action taken (`mean`), a log-density of actions (`log_prob`, for the importance weights), the BC
loss (`loss`, its NLL up to a constant) and the blend of two policies (`blend`, for the
`adaptive_prior` mitigation). Heads, by name (`HEADS`):

- `fixed_std` (the default): a Gaussian around the output with a fixed std (`action_std`, as in
  the GP policy). The expert is deterministic, so a learned std would only shrink towards zero
  and rescale the BC gradients, and a fixed std makes the NLL the squared error up to a
  constant. Its loss-gradient kernel is the last-layer kernel with a bias feature
  (`amf.nn_kernels`): the label enters the gradient only as a scale.
- `categorical`: every action dimension discretised into `BINS` bins over the actuators' range
  [-1, 1] (brax clips actions there), a softmax over them. It is the cheapest head whose
  log-likelihood gradient depends on the label in more than a scale: the gradient in the
  logits is `onehot(label) - p`, so two inputs' gradients agree only when their predicted
  action distributions do, and the loss-gradient kernel becomes the last-layer kernel times a
  similarity of those distributions (docs/design.md §3). A learned state-dependent std does
  not get there: its kernel is the last-layer kernel rescaled per input by `1 / sigma(x)` plus
  a multiple of itself (derived in docs/design.md), so it is not offered. A mixture or a
  diffusion head would also get there at several times the cost per BC step on 2 CPU cores.
  The expert's continuous action is the categorical's label through its two-hot target (the
  weights of the two nearest bins whose mean is the action), so the BC minimiser's mean is the
  action itself, not its nearest bin centre.
"""
import math
from typing import NamedTuple, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from amf.policies import gaussian_log_prob, policy_inputs
from amf.registry import lookup

# The categorical head's bins per action dimension and their range: brax's actuators clip
# actions to [-1, 1]; the integrator's (|a| <= 0.25) use the middle quarter of the bins.
BINS = 21
ACTION_RANGE = (-1.0, 1.0)


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


class FixedStd(NamedTuple):
  """`N(out, std^2 I)`: the raw output is the mean action."""
  action_size: int
  std: float
  name = "fixed_std"

  @property
  def width(self) -> int:
    return self.action_size

  def mean(self, out):
    return out

  def log_prob(self, out, action):
    return gaussian_log_prob(out, action, self.std)

  def loss(self, out, action):
    """`0.5 ||out - action||^2`: the NLL times `std^2`, less a constant."""
    err = out - action
    return 0.5 * jnp.sum(err ** 2, -1)

  def blend(self, gate_logit, out, prior_out):
    """`g out + (1 - g) prior_out`, `g = sigmoid(gate_logit)`: the blend of the two means."""
    g = jax.nn.sigmoid(gate_logit)[..., None]
    return g * out + (1 - g) * prior_out


class Categorical(NamedTuple):
  """A softmax over `bins` evenly spaced action values per action dimension, independent
  across dimensions; the raw output holds the logits, `(..., action_size * bins)`.

  As a density of continuous actions it is "a bin, then a triangular jitter of one bin's
  half-width around its centre": `p(a) = sum_j p_j max(0, 1 - |a - c_j| / delta) / delta` on
  `[low - delta, high + delta]`, whose mean is the categorical's mean `sum_j p_j c_j` (the
  action taken). `log_prob` clips actions to `[low, high]` first, as the envs do before acting,
  so every action has a finite log-density and the importance weights stay defined.
  """
  action_size: int
  bins: int = BINS
  low: float = ACTION_RANGE[0]
  high: float = ACTION_RANGE[1]
  name = "categorical"

  @property
  def width(self) -> int:
    return self.action_size * self.bins

  @property
  def spacing(self) -> float:
    return (self.high - self.low) / (self.bins - 1)

  def centres(self) -> jax.Array:
    return jnp.linspace(self.low, self.high, self.bins)

  def log_probs(self, out) -> jax.Array:
    """`log p` of every bin, `(..., action_size, bins)`."""
    return jax.nn.log_softmax(out.reshape(out.shape[:-1] + (self.action_size, self.bins)))

  def two_hot(self, action) -> jax.Array:
    """The weights `(..., action_size, bins)` of the two bins around each (clipped) action
    coordinate whose weighted centre is the action: the hat functions at the action."""
    t = (jnp.clip(action, self.low, self.high) - self.low) / self.spacing
    return jax.nn.relu(1.0 - jnp.abs(t[..., None] - jnp.arange(self.bins)))

  def mean(self, out):
    return jnp.exp(self.log_probs(out)) @ self.centres()

  def log_prob(self, out, action):
    logp = jax.nn.logsumexp(self.log_probs(out), -1, b=self.two_hot(action))
    return logp.sum(-1) - self.action_size * math.log(self.spacing)

  def loss(self, out, action):
    """Cross-entropy with the two-hot target: the NLL of the label drawn by rounding the action
    to one of its two bins at random with the target's weights (unbiased: `E c_label = a`)."""
    return -jnp.sum(self.two_hot(action) * self.log_probs(out), (-2, -1))

  def blend(self, gate_logit, out, prior_out):
    """The mixture `g p + (1 - g) p_0` as log-probabilities (a categorical again; its mean is
    the blend of the two means), in log space from the gate's logit so a saturated gate
    gives no `log 0`."""
    g = gate_logit[..., None, None]
    logp = jnp.logaddexp(jax.nn.log_sigmoid(g) + self.log_probs(out),
                         jax.nn.log_sigmoid(-g) + self.log_probs(prior_out))
    return logp.reshape(out.shape)

  def cdf(self, out) -> jax.Array:
    return jnp.cumsum(jnp.exp(self.log_probs(out)), -1)


Head = Union[FixedStd, Categorical]
# name -> `(action_size, action_std) -> head`
HEADS = {"fixed_std": FixedStd, "categorical": lambda action_size, _: Categorical(action_size)}


def make_head(name: str, action_size: int, action_std: float) -> Head:
  """The head `name` (one of `HEADS`) for actions of `action_size` dimensions."""
  return lookup(HEADS, name, "policy head")(action_size, action_std)


class NNPolicy(NamedTuple):
  """An MLP policy `f_theta(s, phi(c))`; `phi` broadcasts over the leading axes of `obs`."""
  module: MLP
  obs_size: int
  feature_size: int
  action_std: float
  head: Head

  def init(self, key: jax.Array):
    return self.module.init(key, jnp.zeros(self.obs_size + self.feature_size))

  def outputs(self, params, obs: jax.Array, phi: jax.Array) -> jax.Array:
    """The head's raw outputs (the last Dense layer's)."""
    return self.module.apply(params, policy_inputs(obs, phi))

  def act(self, params, obs: jax.Array, phi: jax.Array) -> jax.Array:
    """The mean action: the deterministic action used for evaluation."""
    return self.head.mean(self.outputs(params, obs, phi))

  def log_prob(self, params, obs, phi, action) -> jax.Array:
    return self.head.log_prob(self.outputs(params, obs, phi), action)


def make_policy(obs_size: int, feature_size: int, action_size: int,
                hidden: Sequence[int] = (256, 256), action_std: float = 0.05,
                head: str = "fixed_std") -> NNPolicy:
  """The policy with head `head` (one of `HEADS`; `action_std` is the `fixed_std` head's)."""
  h = make_head(head, action_size, action_std)
  return NNPolicy(MLP(tuple(hidden), h.width), obs_size, feature_size, action_std, h)
