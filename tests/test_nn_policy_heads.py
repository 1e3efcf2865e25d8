"""Tests of the policy heads (`amf/nn_policy.py`): the categorical head's targets, density and
blend, the fixed-std head's blend, and BC with forgetting mitigations under the categorical
head (the fixed-std head's are test_nn_policy.py, test_bc.py and test_forgetting.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from amf import bc, data, forgetting
from amf.nn_policy import Categorical, FixedStd, make_head, make_policy
from shared import BATCH, features

HEAD = Categorical(action_size=2)


def _logits(key, shape=(3,)):
  return 2.0 * jax.random.normal(jax.random.PRNGKey(key), shape + (HEAD.width,))


def test_two_hot_targets_have_the_action_as_their_mean():
  action = jnp.array([[0.33, -0.97], [1.0, -1.0], [0.05, 2.5]])  # 2.5 is clipped to 1
  w = HEAD.two_hot(action)
  np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
  assert int((w > 0).sum(-1).max()) <= 2
  np.testing.assert_allclose(w @ HEAD.centres(), jnp.clip(action, -1, 1), atol=1e-6)


def test_the_bc_loss_is_minimal_at_the_two_hot_target_whose_mean_is_the_action():
  action = jnp.array([0.33, -0.48])
  best = jnp.log(HEAD.two_hot(action) + 1e-12).reshape(-1)
  np.testing.assert_allclose(HEAD.mean(best), action, atol=1e-5)
  others = best + 0.3 * jax.random.normal(jax.random.PRNGKey(0), (20, HEAD.width))
  assert np.all(HEAD.loss(others, action) > HEAD.loss(best, action))


def test_log_prob_is_the_density_of_a_bin_then_a_triangular_jitter():
  """One action dimension: `p(a) = sum_j p_j hat_j(a)` integrates to 1 over the bins' range
  and the half hats beyond it; its mean is `mean`."""
  head = Categorical(action_size=1)
  out = _logits(1, ())[:head.width]
  p = jax.nn.softmax(out)
  grid = jnp.linspace(-1.0, 1.0, 20001)
  density = jnp.exp(jax.jit(jax.vmap(lambda a: head.log_prob(out, a[None])))(grid))
  mass = jnp.trapezoid(density, grid) + (p[0] + p[-1]) / 2
  np.testing.assert_allclose(mass, 1.0, rtol=1e-4)
  np.testing.assert_allclose(head.mean(out), p @ head.centres(), rtol=1e-5)
  # Both action dimensions are independent: the log-densities add.
  out2, a = _logits(2, ()), jnp.array([0.12, -0.61])
  lp1 = lambda d: Categorical(1).log_prob(out2.reshape(2, -1)[d], a[d:d + 1])
  np.testing.assert_allclose(HEAD.log_prob(out2, a), lp1(0) + lp1(1), rtol=1e-5)


def test_categorical_blend_is_the_mixture_and_saturated_gates_stay_finite():
  out, prior = _logits(3), _logits(4)
  g = jnp.array([0.2, 0.5, 0.9])
  blended = HEAD.blend(jnp.log(g / (1 - g)), out, prior)
  p = lambda o: jnp.exp(HEAD.log_probs(o))
  np.testing.assert_allclose(p(blended), g[:, None, None] * p(out)
                             + (1 - g[:, None, None]) * p(prior), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(HEAD.mean(blended), g[:, None] * HEAD.mean(out)
                             + (1 - g[:, None]) * HEAD.mean(prior), rtol=1e-5, atol=1e-6)
  loss = jax.jit(jax.value_and_grad(
      lambda t: HEAD.loss(HEAD.blend(t, out, prior), jnp.zeros(2)).sum()))
  for logit, side in ((200.0, out), (-200.0, prior)):
    full = HEAD.blend(jnp.full(3, logit), out, prior)
    np.testing.assert_allclose(HEAD.log_probs(full), HEAD.log_probs(side), atol=1e-5)
    assert np.all(np.isfinite(loss(jnp.full(3, logit))[1]))


def test_fixed_std_blend_is_the_blend_of_the_means():
  head, out, prior = FixedStd(2, 0.1), jnp.ones((3, 2)), jnp.zeros((3, 2))
  np.testing.assert_allclose(head.blend(jnp.array([-1.0, 0.0, 2.0]), out, prior)[:, 0],
                             jax.nn.sigmoid(jnp.array([-1.0, 0.0, 2.0])), rtol=1e-6)


def test_heads_by_name_and_their_layer_widths():
  policy = make_policy(2, 3, 2, (8,), 0.1, "categorical")
  params = policy.init(jax.random.PRNGKey(0))
  assert params["params"]["head"]["kernel"].shape == (8, 2 * 21)
  assert make_policy(2, 3, 2, (8,), 0.1).head == FixedStd(2, 0.1)
  with pytest.raises(ValueError, match=r"policy head 'gauss'.*\['categorical', 'fixed_std'\]"):
    make_head("gauss", 2, 0.1)


@pytest.mark.slow  # > 3 s: pre-trains, then fine-tunes under two mitigations
def test_bc_and_mitigations_with_the_categorical_head(env):
  """BC imitates the expert with the categorical head's mean action; `adaptive_prior` and
  `isolation` fine-tune, act (the blended mean is the blend of the means) and give finite
  log-probabilities."""
  policy = make_policy(env.observation_size, env.task_feature_size, env.action_size, (32, 32),
                       head="categorical")
  optimizer = optax.adam(3e-3)
  pre = data.pretraining(env, jax.random.key(0), 12, data.mix_weights("uniform", 12))
  params, _, losses = jax.jit(lambda key: bc.pretrain(policy, optimizer, pre, env.task_features,
                                                      key, 400, BATCH))(jax.random.key(1))
  assert losses[-20:].mean() < 0.3 * losses[:20].mean()
  phi = features(env, pre)
  err = jnp.abs(policy.act(params, pre.obs, phi) - pre.actions)
  assert err.mean() < 0.25 * jnp.abs(pre.actions).mean()

  new = data.demonstrate(env, jax.random.key(5), jnp.array([0, 4, 8]))
  for name in ("adaptive_prior", "isolation"):
    mode = forgetting.make(name, env, policy, optimizer, BATCH)
    state = jax.jit(mode.finetune, static_argnums=4)(mode.init(params, jax.random.key(4)), pre,
                                                     new, jax.random.key(6), 100)
    actions = mode.act(state, pre.obs, phi)
    assert float(jnp.abs(actions - pre.actions).mean()) < 0.5 * jnp.abs(pre.actions).mean()
    assert jnp.all(jnp.isfinite(mode.log_prob(state, pre.obs, phi, pre.actions)))
    if name == "adaptive_prior":
      g = mode.gate(state, phi)[..., None]
      expected = (g * policy.act(state.params["theta"], pre.obs, phi)
                  + (1 - g) * policy.act(state.prior, pre.obs, phi))
      np.testing.assert_allclose(actions, expected, rtol=1e-4, atol=1e-5)
