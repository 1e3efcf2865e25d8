"""What every policy here shares: its input `x = (s, phi(c))` and its Gaussian likelihood.

Both AMF-GP's policy (a GP posterior mean) and AMF-NN's (an MLP, possibly gated by a
forgetting mitigation) are deterministic means with a fixed action noise `std`; that noise
gives the log-likelihoods the importance weights of `amf.occupancy` compare.
"""
import jax
import jax.numpy as jnp


def policy_inputs(obs: jax.Array, task_features: jax.Array) -> jax.Array:
  """`x = (s, phi(c))`, broadcasting `task_features` over the leading axes of `obs`."""
  phi = jnp.broadcast_to(task_features, obs.shape[:-1] + task_features.shape[-1:])
  return jnp.concatenate([obs, phi], -1)


def gaussian_log_prob(mean: jax.Array, action: jax.Array, std: float) -> jax.Array:
  """Log-density of `action` under independent Gaussians around `mean`, summed over the last
  axis."""
  return jax.scipy.stats.norm.logpdf(action, mean, std).sum(-1)
