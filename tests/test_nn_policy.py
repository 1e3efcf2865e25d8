"""Tests of AMF-NN's policy (`amf/nn_policy.py`): an MLP over `x = (s, phi(c))` with a Gaussian
head of fixed std. (Its BC training is in test_bc.py, the forgetting mitigations in
test_forgetting.py.)"""
import jax
import jax.numpy as jnp
import numpy as np

from amf.nn_policy import make_policy


def _policy_and_params():
  policy = make_policy(obs_size=2, feature_size=3, action_size=2, hidden=(8, 4), action_std=0.1)
  return policy, policy.init(jax.random.PRNGKey(0))


def test_init_builds_the_layers_over_state_and_task_features():
  _, params = _policy_and_params()
  shapes = jax.tree.map(jnp.shape, params["params"])
  assert shapes == {"layers_0": {"kernel": (5, 8), "bias": (8,)},
                    "layers_1": {"kernel": (8, 4), "bias": (4,)},
                    "head": {"kernel": (4, 2), "bias": (2,)}}


def test_act_is_the_mlp_on_state_and_broadcast_task_features():
  policy, params = _policy_and_params()
  obs = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 2))
  phi = jnp.array([0.3, -1.0, 2.0])
  act = policy.act(params, obs, phi)
  assert act.shape == (4, 6, 2)
  # By hand: ReLU layers, then the linear head, on the concatenation (s, phi).
  p = params["params"]
  x = np.concatenate([np.asarray(obs), np.broadcast_to(phi, (4, 6, 3))], -1)
  for layer in ("layers_0", "layers_1"):
    x = np.maximum(x @ np.asarray(p[layer]["kernel"]) + np.asarray(p[layer]["bias"]), 0.0)
  expected = x @ np.asarray(p["head"]["kernel"]) + np.asarray(p["head"]["bias"])
  np.testing.assert_allclose(act, expected, rtol=1e-5, atol=1e-6)


def test_log_prob_is_gaussian_around_the_action_with_the_fixed_std():
  policy, params = _policy_and_params()
  obs, phi = jnp.array([[0.1, 0.2], [-0.5, 0.4]]), jnp.array([1.0, 0.0, -1.0])
  mean = policy.act(params, obs, phi)
  offset = jnp.array([[0.05, -0.2], [0.0, 0.1]])
  got = policy.log_prob(params, obs, phi, mean + offset)
  assert got.shape == (2,)
  # Two independent dimensions of std 0.1 each.
  expected = (-0.5 * np.sum((np.asarray(offset) / 0.1) ** 2, -1)
              - 2 * (np.log(0.1) + 0.5 * np.log(2 * np.pi)))
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # The mean action is the most likely one.
  assert np.all(policy.log_prob(params, obs, phi, mean) > got)
