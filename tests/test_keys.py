"""Random streams (`amf/keys.py`) and the key audit of every loop (`key_audit.py`): no two
consumers of one round of AMF-GP, AMF-NN on a finite set, and AMF-NN in a continuous task
space (random and continuous proposals) receive the same key."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from amf import data, forgetting, keys, sweep
from amf.active import LoopConfig, make_loop
from amf.envs.integrator import Integrator
from amf.nn_learner import NNLearner
from amf.nn_policy import make_policy
from amf.proposals import Ascent
from key_audit import audit, collisions
from shared import gp_learner


def test_streams_are_one_split_and_appending_keeps_the_others():
  key = jax.random.PRNGKey(0)
  two, three = keys.streams(key, ("a", "b")), keys.streams(key, ("a", "b", "c"))
  np.testing.assert_array_equal(two["a"], jax.random.split(key)[0])
  for name in ("a", "b"):
    np.testing.assert_array_equal(two[name], three[name])
  with pytest.raises(ValueError, match="distinct"):
    keys.streams(key, ("a", "a"))


def test_by_value_follows_the_value_not_the_row():
  key = jax.random.PRNGKey(1)
  tasks = jnp.array([[0.5, 0.1], [1.5, 0.1], [0.5, 0.2]])
  k = keys.by_value(key, tasks)
  np.testing.assert_array_equal(keys.by_value(key, tasks[::-1]), k[::-1])
  np.testing.assert_array_equal(keys.by_value(key, tasks[:1]), k[:1])
  assert len({np.asarray(x).tobytes() for x in k}) == 3
  # A gradient through tasks that also key draws: the keys have none, the rest flows.
  grad = jax.grad(lambda t: jnp.sum(t * jax.random.uniform(keys.by_value(key, t)[0])))(tasks)
  assert np.all(np.isfinite(grad))


def test_the_audit_finds_a_fold_in_beside_a_split():
  def collide(key):
    _, b = jax.random.split(key)
    independent = jax.random.normal(jax.random.fold_in(key, 1))  # it is `b`
    return independent + jax.random.normal(b)

  with audit() as uses:
    jax.block_until_ready(jax.jit(collide)(jax.random.PRNGKey(0)))
  assert len(collisions(uses)) == 1


def _nn_learner(env, kernels):
  policy = make_policy(2, 2, 2, (8, 8), 0.05)
  mitigation = forgetting.make("adaptive_prior", env, policy, optax.adam(1e-3), 16)
  return NNLearner(env, policy, mitigation, kernels, 0.1, 3, 2)


BASE = dict(pretrain_size=3, budget=2, batch_size=2, eval_episodes=2, occupancy_samples=2)
CONTINUOUS = dict(task_space="continuous", target_region=((1.7, 2.1),), num_targets=3,
                  num_candidates=3, ascent=Ascent(starts=1, steps=2))
LOOPS = {
    "gp finite": ("gp", dict(strategies=("amf",), estimators=("uniform",))),
    "gp finite baselines": ("gp", dict(strategies=("uniform", "rebalancing"))),
    "nn finite": ("nn", dict(strategies=("amf",), estimators=("learned",))),
    "nn finite rollout": ("nn", dict(strategies=("amf",), estimators=("rollout",))),
    "nn continuous random": ("nn", dict(strategies=("amf",), estimators=("uniform",),
                                        proposal="random", **CONTINUOUS)),
    "nn continuous ascent": ("nn", dict(strategies=("amf",), estimators=("importance",),
                                        proposal="continuous", **CONTINUOUS)),
}


@pytest.mark.slow  # traces each loop afresh (the audit clears the compilation caches)
@pytest.mark.parametrize("name", sorted(LOOPS))
def test_no_two_consumers_of_a_round_receive_the_same_key(name):
  learner_kind, settings = LOOPS[name]
  env = Integrator(horizon=4)
  # dropout draws masks from the kernel's key; the GP has none.
  learner = gp_learner(env) if learner_kind == "gp" else _nn_learner(env, ("dropout",))
  loop = make_loop(env, learner, LoopConfig(**BASE, **settings))
  weights = data.mix_weights("subset", env.num_tasks, k=2)
  with audit() as uses:
    carry = jax.jit(loop.init)(sweep.seed_keys(0, [0])[0], weights)
    jax.block_until_ready(jax.jit(loop.advance)(carry, 1))
  sites = set().union(*uses.values())
  # The audit saw the round's consumers: resets, the expert's demos, selection and fitting.
  assert any("envs/integrator.py" in s for s in sites), sites
  assert any("amf/data.py" in s for s in sites), sites
  assert len(uses) > 20, len(uses)
  assert not collisions(uses), collisions(uses)


@pytest.mark.slow  # compiles brax reacher episodes
def test_dart_noise_and_the_brax_reset_receive_their_own_keys():
  from amf.envs.reacher import Reacher
  env = Reacher(horizon=3)
  with audit() as uses:
    demos = jax.jit(lambda k: data.demonstrate(env, k, jnp.array([0, 3]), noise=0.2))(
        jax.random.PRNGKey(0))
    jax.block_until_ready(demos)
  sites = set().union(*uses.values())
  assert any("envs/reacher.py" in s for s in sites) and any("amf/rollout.py" in s for s in sites)
  assert not collisions(uses), collisions(uses)
