"""Kernels over policy inputs `x = (s, phi(c))`, registered by name.

A GP kernel here is a tinygp kernel over the concatenated input, with one lengthscale for the
state part and one for the task-feature part: `make(name, state_size, ...)` builds it.
"""
import jax.numpy as jnp
from tinygp import kernels, transforms
from tinygp.kernels import distance

from amf import registry

STATIONARY = {
    "rbf": kernels.ExpSquared,
    "matern32": kernels.Matern32,
    "matern52": kernels.Matern52,
}


def make(name: str, state_size: int, task_feature_size: int, state_scale: float,
         task_scale: float, amplitude: float = 1.0) -> kernels.Kernel:
  """`amplitude * k(|x - x'| / scale)` with separate scales for the state and the task part."""
  inv_scale = jnp.concatenate([jnp.full((state_size,), 1.0 / state_scale),
                               jnp.full((task_feature_size,), 1.0 / task_scale)])
  # Euclidean distance: tinygp's Matern kernels default to L1, which is not positive
  # definite on inputs of more than one dimension.
  base = registry.lookup(STATIONARY, name, "GP kernel")(distance=distance.L2Distance())
  return amplitude * transforms.Linear(inv_scale, base)
