"""Fixtures that several test files share, each built once per session.

A test file that needs another environment defines its own `env`, which takes precedence.
Compiled programs are cached on disk (`.cache/jax`), so a second run of the suite skips most of
its compilation. The suite's time is mostly XLA compiling small programs once, so tests (and
the scripts they start, which inherit the environment) compile with XLA's backend
optimisation level 0: about 30% less time on the compile-heavy files, the same programs up to
floating-point rounding (experiments and benchmarks keep XLA's defaults).
"""
import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp
import optax
import pytest

from amf import bc, data, rollout, sweep
from amf.active import LoopConfig, make_loop
from amf.envs.integrator import Integrator
from amf.nn_policy import make_policy
from shared import BATCH, K, R, SETTINGS, STEPS, gp_learner

jax.config.update("jax_compilation_cache_dir",
                  str(pathlib.Path(__file__).parents[1] / ".cache" / "jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@pytest.fixture(scope="session")
def gp_loop():
  """The tiny AMF-GP setting of `shared`, two seeds, compiled once and run 0, 1 and R rounds."""
  env = Integrator(horizon=8)
  loop = make_loop(env, gp_learner(env), LoopConfig(strategies=("amf",), **SETTINGS))
  keys = sweep.seed_keys(0, [0, 1])
  weights = jnp.stack([data.mix_weights("subset", K, k=1)] * 2)
  initial = jax.jit(jax.vmap(loop.init))(keys, weights)
  advance_all = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))
  after_one = advance_all(initial, 1)
  final = advance_all(initial, R)
  return dict(env=env, loop=loop, keys=keys, weights=weights, initial=initial,
              advance_all=advance_all, after_one=after_one, final=final)


@pytest.fixture(scope="session")
def env():
  """The integrator; test files on other environments define their own `env`."""
  return Integrator()


@pytest.fixture(scope="session")
def run_expert(env):
  """Jitted expert rollouts, 5 episodes per task."""
  return jax.jit(lambda key, tasks: rollout.rollouts(env, env.expert, key, tasks, 5))


@pytest.fixture(scope="session")
def bc_setup(env):
  """A tiny policy, its optimiser, the pre-training data and the jitted pre-training."""
  policy = make_policy(env.observation_size, env.task_feature_size, env.action_size, (32, 32))
  optimizer = optax.adam(3e-3)
  pre = data.pretraining(env, jax.random.key(0), 12, data.mix_weights("uniform", 12))
  run = jax.jit(lambda key, d: bc.pretrain(policy, optimizer, d, env.task_features, key, STEPS,
                                           BATCH))
  trainer = bc.Trainer(bc.policy_loss(policy), optimizer, BATCH)
  return policy, optimizer, pre, run, trainer


@pytest.fixture(scope="session")
def bc_pretrained(bc_setup):
  """(params, optimiser state, losses) of `bc_setup`'s pre-training."""
  *_, pre, run, _ = bc_setup
  return run(jax.random.key(1), pre)
