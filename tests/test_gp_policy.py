"""Tests of AMF-GP's policy (`amf/gp_policy.py`): the GP posterior mean, its likelihood and
covariance, against brute-force conditioning."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import data as data_lib, gp, gp_kernels
from amf.envs.integrator import Integrator
from amf.data import dataset_inputs
from amf.gp_policy import GPPolicy

SCALES = np.array([0.7, 0.7, 1.3])  # state, state, task lengthscales
AMPLITUDE = 1.5


def _rbf(a, b, scales=SCALES, amplitude=AMPLITUDE):
  """Closed-form RBF with per-dimension lengthscales, float64."""
  diff = (a[:, None, :] - b[None, :, :]) / scales
  return amplitude * np.exp(-0.5 * np.sum(diff ** 2, -1))


@pytest.fixture(scope="module")
def policy_setup():
  env = Integrator(horizon=4)
  kernel = gp_kernels.make("rbf", 2, 2, 0.5, 0.5, 1.0)
  policy = GPPolicy(env, kernel, noise=0.1, action_std=0.1)
  data = data_lib.concat(data_lib.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 3, 7])),
                         data_lib.empty(env, 2))
  return env, kernel, policy, data


def test_policy_act_and_log_prob_match_brute_force(policy_setup):
  env, _, policy, data = policy_setup
  inputs, actions, mask = (np.asarray(a, np.float64) for a in dataset_inputs(env, data))
  assert inputs.shape == (5 * 4, 4) and mask.sum() == 3 * 4
  x, y = inputs[mask > 0], actions[mask > 0]
  scales = np.full(4, 0.5)
  obs, phi = np.array([0.1, -0.2]), np.asarray(env.task_features(env.tasks[3]))
  q = np.concatenate([obs, phi])[None]
  inv = np.linalg.inv(_rbf(x, x, scales, 1.0) + 0.01 * np.eye(len(x)))
  mean = (_rbf(q, x, scales, 1.0) @ inv @ y)[0]
  a = np.array([0.05, 0.2])

  @jax.jit
  def act_and_log_prob(data, obs, phi, a):
    fitted = policy.fit(data)
    return policy.act(fitted, obs, phi), policy.log_prob(fitted, obs, phi, a)

  act, log_prob = act_and_log_prob(data, *map(jnp.asarray, (obs, phi, a)))
  np.testing.assert_allclose(act, mean, rtol=1e-4, atol=1e-4)
  expected = np.sum(-0.5 * ((a - mean) / 0.1) ** 2 - np.log(0.1 * np.sqrt(2 * np.pi)))
  np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-3)


def test_policy_reproduces_expert_on_its_demonstrations(policy_setup):
  env, _, policy, data = policy_setup

  @jax.jit
  def acts(data):
    fitted = policy.fit(data)
    phi = jax.vmap(env.task_features)(data.task[:3])
    return jax.vmap(jax.vmap(lambda o, p: policy.act(fitted, o, p), in_axes=(0, None)))(
        data.obs[:3], phi)

  # The GP smooths with noise 0.1, so only roughly; the expert's actions are up to 0.25.
  np.testing.assert_allclose(acts(data), data.actions[:3], atol=0.08)


def test_policy_covariance_ignores_empty_slots(policy_setup):
  env, kernel, policy, data = policy_setup
  query = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4)))
  cov, prior_var, _ = jax.jit(lambda d, q: policy.covariance(None, d, q, None, 0))(data, query)
  inputs, _, _ = dataset_inputs(env, data)
  filled = jax.jit(lambda k, x, q: gp.posterior_covariance(k, x, jnp.ones(12, bool), 0.1, q))(
      kernel, inputs[:12], query)
  np.testing.assert_allclose(cov, filled, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(prior_var, 1.0, rtol=1e-6)  # the RBF's amplitude
