"""Env-steps per second of our brax wrappers next to brax's own `step`, measured in one run.

  python -m benchmarks.envs [--envs=reacher,pusher] [--sizes=1,64,256,1024]

First the seconds to build each environment (and, for comparison, brax's own eager
`observation_size`). Then for each environment and number of parallel episodes it times one
jitted program each of:
`raw` (brax's reset, then `vmap(step)` in a scan with zero actions), `wrapper` (our reset, step
and success test through `amf.rollout` with zero actions), `demos` (expert demonstrations via
`amf.data.demonstrate`) and `eval` (`amf.rollout.evaluate` of a small MLP policy), all over the
same horizon. Compilation is excluded (each program runs once first); the best of `--repeats`
timed runs counts, the four programs timed in turn. Ratios are raw steps/s over ours: 1.0
means no overhead.
"""
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
from absl import flags

from amf import cli, data, envs
from amf.rollout import evaluate, policy_actor, rollouts

_ENVS = flags.DEFINE_list("envs", ["reacher", "pusher"], "Environments to time.")
_SIZES = flags.DEFINE_list("sizes", ["1", "64", "256", "1024"], "Parallel episodes.")
_HORIZON = flags.DEFINE_integer("horizon", 20, "Steps per episode in every program.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per program (the best counts).")


class MLP(nn.Module):
  """A policy of the size AMF-NN uses: 2 hidden layers, tanh-squashed actions."""
  action_size: int

  @nn.compact
  def __call__(self, obs, features):
    x = jnp.concatenate([obs, features], -1)
    for _ in range(2):
      x = nn.relu(nn.Dense(256)(x))
    return jnp.tanh(nn.Dense(self.action_size)(x))


def build_seconds(name: str) -> tuple[float, float]:
  """Seconds to build our environment, and to read brax's eager `observation_size` of the
  very brax env it wraps (which runs `reset` op by op; ours uses `jax.eval_shape`)."""
  start = time.perf_counter()
  env = envs.make(name)
  ours = time.perf_counter() - start
  start = time.perf_counter()
  env._env.observation_size  # pylint: disable=protected-access,pointless-statement
  return ours, time.perf_counter() - start


def programs(name: str, n: int, horizon: int) -> dict:
  """The four jitted programs for `n` parallel episodes, each `key -> final arrays`."""
  env = envs.make(name, horizon=horizon)
  raw = env._env  # pylint: disable=protected-access  # the very brax env we wrap

  def raw_program(key):
    state = jax.vmap(raw.reset)(jax.random.split(key, n))
    zeros = jnp.zeros((n, raw.action_size))
    step = lambda s, _: (jax.vmap(raw.step)(s, zeros), s.reward)
    return jax.lax.scan(step, state, None, horizon)[1]

  tasks = lambda key: env.sample_tasks(key, n)
  zero_actor = lambda state: jnp.zeros(env.action_size)
  mlp = MLP(env.action_size)
  params = mlp.init(jax.random.PRNGKey(0), jnp.zeros(env.observation_size),
                    jnp.zeros(env.task_feature_size))
  policy = policy_actor(env, lambda obs, features: mlp.apply(params, obs, features))
  task_ids = jnp.arange(n) % env.num_tasks
  return {
      "raw": jax.jit(raw_program),
      "wrapper": jax.jit(lambda key: rollouts(env, zero_actor, key, tasks(key)).rewards),
      "demos": jax.jit(lambda key: data.demonstrate(env, key, task_ids).actions),
      "eval": jax.jit(lambda key: evaluate(env, policy, key, tasks(key), 1).ret),
  }


def steps_per_second(programs_: dict, steps: int, repeats: int) -> dict:
  """Best-of-`repeats` rates, the programs timed in turn so that load drifts hit all alike."""
  for program in programs_.values():
    jax.block_until_ready(program(jax.random.PRNGKey(0)))  # compile
  best = dict.fromkeys(programs_, float("inf"))
  for i in range(repeats):
    for kind, program in programs_.items():
      start = time.perf_counter()
      jax.block_until_ready(program(jax.random.PRNGKey(i + 1)))
      best[kind] = min(best[kind], time.perf_counter() - start)
  return {kind: steps / seconds for kind, seconds in best.items()}


def main(argv):
  del argv
  unknown = set(_ENVS.value) - set(envs.ENVS)
  if unknown:
    raise ValueError(f"Unknown environment(s) {sorted(unknown)}; choose from {sorted(envs.ENVS)}.")
  for name in _ENVS.value:
    ours, eager = build_seconds(name)
    print(f"{name}: built in {ours:.2f} s; brax's eager observation_size alone {eager:.2f} s")
  print(f"{jax.devices()[0].platform} x{jax.device_count()}, horizon {_HORIZON.value}; "
        "env-steps/s (raw / ours ratio)")
  print(f"{'env':8} {'n':>5} {'raw':>9} {'wrapper':>16} {'demos':>16} {'eval':>16}")
  for name in _ENVS.value:
    for n in map(int, _SIZES.value):
      rates = steps_per_second(programs(name, n, _HORIZON.value), n * _HORIZON.value,
                               _REPEATS.value)
      cells = [f"{rates[k]:>9.0f} ({rates['raw'] / rates[k]:.2f}x)"
               for k in ("wrapper", "demos", "eval")]
      print(f"{name:8} {n:>5} {rates['raw']:>9.0f} " + " ".join(cells), flush=True)


if __name__ == "__main__":
  cli.run(main)
