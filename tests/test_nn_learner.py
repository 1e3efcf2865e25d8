"""Tests of AMF-NN's learner and of the active loop with it (integrator, tiny settings)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from tinygp import kernels

from amf import data, forgetting, gp, nn_kernels, sweep
from amf.active import LoopConfig, choose, make_loop
from amf.envs.integrator import Integrator
from amf.data import dataset_inputs
from amf.nn_learner import NNLearner
from amf.nn_policy import make_policy

NOISE = 0.1



def _learner(env, kernels=("loss_gradient",), mode="adaptive_prior", hyper=nn_kernels.Hyper()):
  policy = make_policy(env.observation_size, env.task_feature_size, env.action_size, (16, 16),
                       action_std=0.05)
  mitigation = forgetting.make(mode, env, policy, optax.adam(1e-2), 64)
  return NNLearner(env, policy, mitigation, kernels, NOISE, pretrain_steps=150,
                   finetune_steps=30, hyper=hyper)


@pytest.fixture(scope="module")
def env():
  return Integrator(horizon=8)


@pytest.fixture(scope="module")
def trained(env):
  """A learner pre-trained on 4 demos of tasks 0 and 1, with 2 empty slots."""
  demos = data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 0, 1, 1]))
  dataset = data.concat(demos, data.empty(env, 2))
  learner = _learner(env, kernels=("last_layer", "rbf", "linear"))
  state = jax.jit(learner.init)(dataset, jax.random.PRNGKey(1))
  query = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
  return learner, state, dataset, query


@pytest.mark.slow  # > 3 s: pre-trains the learner or runs its loop
def test_pretraining_fits_the_demonstrations(env, trained):
  learner, state, dataset, _ = trained
  acts = jax.vmap(jax.vmap(lambda o, t: learner.act(state, o, env.task_features(t)),
                           in_axes=(0, None)))(dataset.obs[:4], dataset.task[:4])
  # The expert's actions reach 0.25; BC on 4 demos gets within a small fraction of that.
  assert float(jnp.abs(acts - dataset.actions[:4]).mean()) < 0.03


def test_covariance_with_rbf_equals_the_gp_on_the_raw_inputs(env, trained):
  """Kernel 1 of ("last_layer", "rbf", "linear") through lax.switch and the precomputed Gram
  matrix is the plain GP with tinygp's ExpSquared (mean diagonal 1, so no rescaling)."""
  learner, state, dataset, query = trained
  cov, prior_var, noise = jax.jit(learner.covariance)(state, dataset, query,
                                                     jax.random.PRNGKey(2), 1)
  assert float(noise) == pytest.approx(NOISE)
  inputs, _, mask = dataset_inputs(env, dataset)
  expected = gp.posterior_covariance(kernels.ExpSquared(scale=1.0), inputs, mask, NOISE, query)
  np.testing.assert_allclose(cov, expected, atol=2e-4)
  np.testing.assert_allclose(prior_var, 1.0 + nn_kernels.JITTER, rtol=1e-6)


@pytest.mark.slow  # > 3 s: pre-trains the learner or runs its loop
def test_covariance_does_not_depend_on_the_kernel_scale(env, trained):
  """The Gram matrix is divided by its mean diagonal, so `noise` is relative to the prior."""
  learner, state, dataset, query = trained
  key = jax.random.PRNGKey(3)
  one, _, _ = jax.jit(learner.covariance)(state, dataset, query, key, 2)
  wide = learner._replace(hyper=nn_kernels.Hyper(w_std=3.0))
  three, _, _ = jax.jit(wide.covariance)(state, dataset, query, key, 2)
  np.testing.assert_allclose(one, three, rtol=1e-4, atol=1e-6)
  assert np.all(np.linalg.eigvalsh(np.asarray(one, np.float64)) > -1e-5)


@pytest.mark.slow  # > 3 s: pre-trains the learner or runs its loop
def test_fitted_noise_is_the_marginal_likelihoods_and_both_models_use_it(env, trained):
  """With `fit_noise` the round's noise is `gp.fit_noise` of the demonstrations' actions under
  the scaled Gram matrix; the joint covariance and the factorised model agree on it."""
  learner, state, dataset, query = trained
  fitted = learner._replace(fit_noise=True)
  key = jax.random.PRNGKey(2)
  cov, _, noise = jax.jit(fitted.covariance)(state, dataset, query, key, 0)
  inputs, actions, mask = dataset_inputs(env, dataset)
  gram = fitted.gram(state, inputs, key, 0)
  scale = jnp.sum(jnp.where(mask, jnp.diag(gram), 0.0)) / mask.sum()
  expected = gp.fit_noise(gram / scale + nn_kernels.JITTER * jnp.eye(inputs.shape[0]),
                          actions, mask)
  assert float(noise) == pytest.approx(float(expected), rel=1e-5)
  assert np.isclose(np.sqrt(gp.NOISE_GRID), float(noise), rtol=1e-5).any()  # on the grid

  def factorised(state, dataset, query):
    model = fitted.model(state, dataset, key, 0)
    return model.noise, model.own(query, model.whiten(query))

  model_noise, model_cov = jax.jit(factorised)(state, dataset, query)
  assert float(model_noise) == pytest.approx(float(noise), rel=1e-5)
  np.testing.assert_allclose(model_cov, cov, rtol=1e-4, atol=2e-4)  # two float32 factorisations


def test_check_kernels_names_a_kernel_with_nans(trained):
  learner, state, dataset, _ = trained
  learner.check_kernels(state, dataset, jax.random.PRNGKey(0))  # finite: no error
  broken = state._replace(params=jax.tree.map(lambda p: p * jnp.nan, state.params))
  with pytest.raises(ValueError, match="'last_layer' produced a non-finite"):
    learner.check_kernels(broken, dataset, jax.random.PRNGKey(0))


# --- the loop ---------------------------------------------------------------------------------

SETTINGS = dict(pretrain_size=4, budget=2, batch_size=1, eval_episodes=2, occupancy_samples=2,
                stride=2)


@pytest.fixture(scope="module")
def loop_run(env):
  """Two seeds with different kernel and estimator indices, batched in one program."""
  learner = _learner(env, kernels=("loss_gradient", "last_layer"))
  cfg = LoopConfig(strategies=("amf",), estimators=("importance", "learned"), **SETTINGS)
  loop = make_loop(env, learner, cfg)
  keys = sweep.seed_keys(0, [0, 1])
  weights = jnp.stack([data.mix_weights("subset", env.num_tasks, k=2)] * 2)
  initial = jax.jit(jax.vmap(loop.init))(keys, weights)
  initial = jax.tree.map(lambda a, b: jnp.stack([a[0], b[1]]), choose(initial, 0, 0, 0),
                         choose(initial, 0, 1, 1))
  advance = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))
  return dict(loop=loop, initial=initial, final=advance(initial, 2), advance=advance)


@pytest.mark.slow  # > 3 s: pre-trains the learner or runs its loop
def test_loop_fills_the_budget_and_keeps_the_prior(loop_run):
  initial, final = loop_run["initial"], loop_run["final"]
  np.testing.assert_array_equal(final.round, [2, 2])
  np.testing.assert_array_equal(final.data.mask[:, 4:], True)
  np.testing.assert_array_equal(final.data.task_id[:, 4:], final.asked[..., 0])
  assert np.all((final.asked >= 0) & (final.asked < 12))
  np.testing.assert_array_equal(final.estimator, [0, 1])
  np.testing.assert_array_equal(final.kernel, [0, 1])
  # The frozen prior is the pre-trained network, untouched by two rounds of fine-tuning...
  for a, b in zip(jax.tree.leaves(initial.learner.prior), jax.tree.leaves(final.learner.prior)):
    np.testing.assert_array_equal(a, b)
  # ...while the fine-tuned weights moved.
  moved = [float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(initial.learner.params),
                                                       jax.tree.leaves(final.learner.params))]
  assert max(moved) > 1e-4
  assert np.all(np.isfinite(final.returns)) and np.all((final.success >= 0) & (final.success <= 1))


@pytest.mark.slow  # > 3 s: pre-trains the learner or runs its loop
def test_loop_runs_are_independent_of_their_batch(loop_run):
  """Run 1 advanced alone equals run 1 advanced beside run 0 (pure, batched)."""
  alone = jax.tree.map(lambda x: x[1:], loop_run["initial"])
  single = loop_run["advance"](alone, 2)
  np.testing.assert_array_equal(single.asked[0], loop_run["final"].asked[1])
  np.testing.assert_allclose(single.returns[0], loop_run["final"].returns[1], rtol=1e-4,
                             atol=1e-4)


def test_a_learner_is_built_from_a_config_and_its_fields_travel_as_json():
  """Fast: `nn_learner.Spec` reads the testbed's fields from a config, gives them back as plain
  JSON-able values and reads those again; an unknown forgetting mode or learning-rate decay is
  refused by name."""
  import json
  from amf import nn_learner
  from configs import active_finetune
  config = active_finetune.get_config("integrator,quick")
  plain = json.loads(json.dumps(nn_learner.Spec.from_config(config).to_dict()))
  assert nn_learner.Spec.from_config(plain) == nn_learner.Spec.from_config(config)
  env = Integrator(horizon=8)
  build = lambda **kw: nn_learner.make(nn_learner.Spec.from_config({**plain, **kw}), env)
  learner = build()
  assert learner.kernels == tuple(config.kernels) and learner.noise == config.noise
  assert learner.policy.action_std == config.action_std
  assert learner.mitigation.decay == config.lr_decay == "constant"
  assert build(lr_decay="cosine").mitigation.decay == "cosine"
  with pytest.raises(ValueError, match="'forget'"):
    build(forgetting="forget")
  with pytest.raises(ValueError, match="learning-rate decay 'step'"):
    build(lr_decay="step")


def test_the_policy_head_is_read_from_the_config_and_refused_by_name():
  """`head` picks the policy's head (a saved config without it has the fixed-std one); an
  unknown head is refused with the valid names."""
  import json
  from amf import nn_learner
  from configs import active_finetune
  config = active_finetune.get_config("integrator,quick")
  plain = json.loads(json.dumps(nn_learner.Spec.from_config(config).to_dict()))
  env = Integrator(horizon=8)
  build = lambda d: nn_learner.make(nn_learner.Spec.from_config(d), env)
  assert config.head == "fixed_std" and build(plain).policy.head.name == "fixed_std"
  old = {k: v for k, v in plain.items() if k != "head"}
  assert build(old).policy.head.name == "fixed_std"
  learner = build({**plain, "head": "categorical"})
  assert learner.policy.head.name == "categorical"
  assert learner.policy.module.out == env.action_size * learner.policy.head.bins
  with pytest.raises(ValueError, match=r"policy head 'mixture'.*'categorical', 'fixed_std'"):
    build({**plain, "head": "mixture"})


@pytest.mark.slow  # > 3 s: pre-trains the learner
def test_a_categorical_learner_gives_a_finite_covariance_per_kernel(env):
  """The learner with the categorical head pre-trains, acts, and every kernel's posterior
  covariance (loss_gradient through the head's own kernel) is finite and PSD."""
  from amf import nn_learner
  from configs import active_finetune
  config = active_finetune.get_config("integrator,quick")
  config.head, config.pretrain_steps = "categorical", 150
  config.kernels = ("loss_gradient", "last_layer")
  learner = nn_learner.make(nn_learner.Spec.from_config(config), env)
  demos = data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 0, 1, 1]))
  dataset = data.concat(demos, data.empty(env, 2))
  state = jax.jit(learner.init)(dataset, jax.random.PRNGKey(1))
  assert np.all(np.isfinite(learner.log_prob(state, demos.obs, env.task_features(demos.task[0]),
                                             demos.actions)))
  query = jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32)
  covs = [jax.jit(learner.covariance)(state, dataset, query, jax.random.PRNGKey(2), k)[0]
          for k in range(2)]
  for cov in covs:
    assert np.all(np.isfinite(cov))
    assert np.all(np.linalg.eigvalsh(np.asarray(cov, np.float64)) > -1e-4)
  assert not np.allclose(covs[0], covs[1], atol=1e-3)
