"""What every policy shares (`amf/policies.py`): its input `x = (s, phi(c))` and its Gaussian
likelihood."""
import jax.numpy as jnp
import numpy as np

from amf.policies import gaussian_log_prob, policy_inputs


def test_policy_inputs_broadcast_task_features():
  obs = jnp.arange(12.0).reshape(2, 3, 2)
  x = policy_inputs(obs, jnp.array([7.0, 8.0]))
  assert x.shape == (2, 3, 4)
  np.testing.assert_array_equal(x[..., :2], obs)
  np.testing.assert_array_equal(x[..., 2:], np.broadcast_to([7.0, 8.0], (2, 3, 2)))


def test_gaussian_log_prob_matches_a_hand_computation():
  # Two dimensions, std 0.5: -0.5 * ((0.2 - 0.5)^2 + (0.4 + 1)^2) / 0.25 - 2 log 0.5 - log 2pi
  #   = -0.5 * (0.36 + 7.84) + 1.3862944 - 1.8378771 = -4.5515827.
  got = gaussian_log_prob(jnp.array([0.5, -1.0]), jnp.array([0.2, 0.4]), 0.5)
  assert got.shape == ()
  np.testing.assert_allclose(got, -4.5515827, rtol=1e-6)
  # Summed over the last axis only; leading axes are batch axes. One dimension, std 2, both
  # rows 0.3 from their mean: -0.5 * (0.3 / 2)^2 - log 2 - 0.5 log 2pi = -1.6233357.
  batch = gaussian_log_prob(jnp.array([[0.5], [0.0]]), jnp.array([[0.2], [0.3]]), 2.0)
  assert batch.shape == (2,)
  np.testing.assert_allclose(batch, [-1.6233357, -1.6233357], rtol=1e-6)
