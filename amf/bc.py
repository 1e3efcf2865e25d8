"""Behavioural cloning with optax on masked demonstration datasets (docs/design.md §3).

Pre-training is BC from a random initialisation on the pre-training dataset; fine-tuning is BC
from the pre-trained parameters. The loss is the masked mean of the policy head's NLL of the
expert's action (`amf.nn_policy`; for the default fixed-std head the squared error of the
mean action, the Gaussian NLL up to scale and a constant). Minibatches are
drawn with replacement from the filled `(demo, t)` pairs only, so shapes stay static and empty
slots, whatever they hold, never enter a loss or a gradient.
"""
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from amf.data import Dataset, flat_pairs
from amf.nn_policy import Head, NNPolicy

# `outputs_fn(params, frozen, obs, phi)`: a (possibly composite) policy's raw head outputs.
OutputsFn = Callable[[Any, Any, jax.Array, jax.Array], jax.Array]


class Pairs(NamedTuple):
  """Flattened `(demo, t)` pairs; empty slots are zeroed and have `weight == 0`."""
  obs: jax.Array      # (N, obs_size)
  phi: jax.Array      # (N, feature_size)
  actions: jax.Array  # (N, action_size)
  weight: jax.Array   # (N,) float mask


def pairs(data: Dataset, features_fn: Callable[[jax.Array], jax.Array]) -> Pairs:
  """The dataset's `(s, phi(c), a)` pairs, `N = M * H`, empty slots zeroed with weight 0."""
  obs, phi, actions, mask = flat_pairs(data, features_fn)
  return Pairs(obs, phi, actions, mask.astype(jnp.float32))


def sample(p: Pairs, key: jax.Array, batch_size: int) -> Pairs:
  """`batch_size` pairs drawn uniformly with replacement from the filled ones."""
  total = p.weight.sum()
  # With no filled pair every draw is pair 0 with weight 0: a zero loss and zero gradients.
  idx = jax.random.choice(key, p.weight.shape[0], (batch_size,),
                          p=p.weight / jnp.maximum(total, 1.0))
  return jax.tree.map(lambda x: x[idx], p)


def masked_mean(x: jax.Array, weight: jax.Array) -> jax.Array:
  return (weight * x).sum() / jnp.maximum(weight.sum(), 1.0)


def head_loss(head: Head, outputs_fn: OutputsFn) -> Callable[[Any, Any, Pairs], jax.Array]:
  """The BC loss `mean_w head.loss(outputs_fn(s, phi), a)` of the head's outputs."""
  def loss(params, frozen, batch: Pairs) -> jax.Array:
    out = outputs_fn(params, frozen, batch.obs, batch.phi)
    return masked_mean(head.loss(out, batch.actions), batch.weight)
  return loss


def policy_loss(policy: NNPolicy) -> Callable[[Any, Any, Pairs], jax.Array]:
  """The BC loss of a plain policy (no frozen parts)."""
  return head_loss(policy.head, lambda params, frozen, obs, phi: policy.outputs(params, obs, phi))


# Learning-rate decay within each call of `Trainer.train` (pre-training and every round's
# fine-tuning alike): `constant`, or `cosine` to zero over the call's steps, so a round ends on
# a settled iterate instead of wherever the constant-step noise left it.
DECAYS = ("constant", "cosine")


def check_decay(decay: str) -> str:
  if decay not in DECAYS:
    raise ValueError(f"Unknown learning-rate decay {decay!r}; choose one of {list(DECAYS)}.")
  return decay


class Trainer(NamedTuple):
  """Minibatch BC: `loss(params, frozen, batch)` minimised over `params` by `optimizer`."""
  loss: Callable[[Any, Any, Pairs], jax.Array]
  optimizer: optax.GradientTransformation
  batch_size: int = 256
  decay: str = "constant"  # one of DECAYS

  def train(self, params, opt_state, data: Dataset, features_fn, key: jax.Array,
            num_steps: int, frozen=None):
    """`num_steps` Adam-style steps as one `lax.scan`: `(params, opt_state, losses (num_steps,))`.

    Pure in its array arguments, so it jits (with `features_fn` and `num_steps` static) and
    vmaps over keys. `frozen` enters the loss but is never differentiated nor updated.
    """
    everything = pairs(data, features_fn)
    # Scaling the optimiser's update scales its learning rate (Adam's moments are unaffected);
    # the schedule restarts with every call, whatever step count the optimiser state carries.
    cosine = check_decay(self.decay) == "cosine"
    scale = optax.cosine_decay_schedule(1.0, num_steps)

    def step(carry, inputs):
      params, opt_state = carry
      i, key = inputs
      batch = sample(everything, key, self.batch_size)
      loss, grads = jax.value_and_grad(self.loss)(params, frozen, batch)
      updates, opt_state = self.optimizer.update(grads, opt_state, params)
      if cosine:
        updates = optax.tree_utils.tree_scale(scale(i), updates)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(
        step, (params, opt_state), (jnp.arange(num_steps), jax.random.split(key, num_steps)))
    return params, opt_state, losses

  def full_loss(self, params, data: Dataset, features_fn, frozen=None) -> jax.Array:
    """The loss over every filled pair of `data` (for evaluation)."""
    return self.loss(params, frozen, pairs(data, features_fn))


def pretrain(policy: NNPolicy, optimizer: optax.GradientTransformation, data: Dataset,
             features_fn, key: jax.Array, num_steps: int, batch_size: int = 256,
             decay: str = "constant"):
  """BC from a random initialisation: `(params, opt_state, losses)`."""
  init_key, train_key = jax.random.split(key)
  params = policy.init(init_key)
  trainer = Trainer(policy_loss(policy), optimizer, batch_size, decay)
  return trainer.train(params, optimizer.init(params), data, features_fn, train_key, num_steps)
