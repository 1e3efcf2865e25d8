"""Meta-World env-steps/s: the jitted, vmapped `MetaWorld.step` (one host callback per step for
the whole batch) against MuJoCo's own stepping of the same model, in the same run.

  python -m benchmarks.metaworld --task=push-v3 --sizes=32,128,512

Rows, per batch size B (episodes stepped side by side, uniform random actions, so few succeed
and are held):
- `physics 1 thread`: `mj_step` in a loop on one MjData, frame skip substeps per env-step (the
  rate is per env-step, so independent of B);
- `physics batch`: MuJoCo's `Batch` stepping B simulations on `--threads` threads (substeps
  only: no actions, observations or rewards), the physics' own rate on these cores;
- `callback`: `jit(scan(vmap(env.step)))`, B episodes for `--steps` steps, with the ratio to
  both physics rows; then where its time goes: the host call (`_Host.step`), within it
  MuJoCo's step and Meta-World's observation/reward in numpy, the rest is JAX and transfer;
  and the rate of the MuJoCo steps of those same episodes alone (their states have other
  contacts than the physics rows' resting start; the callback's rate is that rate times the
  MuJoCo step's share);
- `reset`: a jitted, vmapped reset of B episodes, per episode; `expert`: Meta-World's scripted
  policy on B states (one callback), per action.
`--stepper=metaworld` times Meta-World's own `step` instead (the reference). Best of
`--repeats`.
"""
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from absl import app, flags

from amf.envs.metaworld import STEPPERS, MetaWorld

flags.DEFINE_string("task", "push-v3", "the Meta-World task stepped")
flags.DEFINE_list("sizes", ["32", "128", "512"], "batch sizes (episodes side by side)")
flags.DEFINE_integer("steps", 20, "env-steps per timed run")
flags.DEFINE_integer("threads", 2, "MuJoCo Batch threads")
flags.DEFINE_integer("repeats", 3, "timed runs per row (the best is reported)")
flags.DEFINE_enum("stepper", "batch", STEPPERS, "how MetaWorld steps on the host")
FLAGS = flags.FLAGS


def _best(repeats, fn, *args):
  """The best and the total seconds of `repeats` calls of `fn(*args)`."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn(*args)
    times.append(time.perf_counter() - start)
  return min(times), sum(times)


def _ready(fn, *args):
  return jax.block_until_ready(fn(*args))


def _mj_steps(model, data, substeps):
  for _ in range(substeps):
    mujoco.mj_step(model, data)


def _batch_steps(batch, skip, steps):
  for _ in range(steps):
    batch.step(nstep=skip)


class _Timed:
  """Wraps a host function and sums the seconds spent in it."""

  def __init__(self, fn):
    self.fn, self.seconds = fn, 0.0

  def __call__(self, *args, **kwargs):
    start = time.perf_counter()
    out = self.fn(*args, **kwargs)
    self.seconds += time.perf_counter() - start
    return out


def main(_):
  env = MetaWorld(tasks=(FLAGS.task,), horizon=FLAGS.steps, stepper=FLAGS.stepper,
                  threads=FLAGS.threads)
  host = env._host  # pylint: disable=protected-access
  spec = host.specs[0]
  model, skip = spec.env.model, spec.env.frame_skip
  # From an episode's start (object on the table, hand at its start), with the controls of the
  # reset, as an episode with still actions would run.
  data = mujoco.MjData(model)
  rows, _ = host.reset(np.zeros((1, 2), np.uint32), np.zeros((1, 1), np.float32))
  mujoco.mj_setState(model, data, rows.view(np.float64)[0, :spec.nstate],
                     mujoco.mjtState.mjSTATE_INTEGRATION)
  print(f"{FLAGS.task}, stepper={FLAGS.stepper}, {FLAGS.threads} threads, {FLAGS.steps} steps; "
        f"env-steps/s (frame skip {skip})")

  host.step = timed = _Timed(host.step)  # before tracing: the callback calls the wrapper
  reset = jax.jit(jax.vmap(env.reset))
  def episodes(key, states):
    actions = jax.random.uniform(key, (FLAGS.steps,) + states.obs.shape[:1] + (4,),
                                 minval=-1, maxval=1)
    final, _ = jax.lax.scan(lambda s, a: (jax.vmap(env.step)(s, a), None), states, actions)
    return final
  run = jax.jit(episodes)
  expert = jax.jit(jax.vmap(env.expert))

  from mujoco import batch as mj_batch  # pylint: disable=import-outside-toplevel
  for size in map(int, FLAGS.sizes):
    # Each row's physics beside its callback: on a shared machine the load changes between rows.
    raw = 2000 / skip / _best(FLAGS.repeats, _mj_steps, model, data, 2000)[0]
    batch = mj_batch.Batch(model, size, FLAGS.threads)
    batch.state[:] = rows.view(np.float64)[0, :spec.nstate]
    physics = size * FLAGS.steps / _best(FLAGS.repeats, _batch_steps, batch, skip, FLAGS.steps)[0]
    keys = jax.random.split(jax.random.PRNGKey(size), size)
    tasks = jnp.zeros((size, 1))
    states = jax.block_until_ready(reset(keys, tasks))
    reset_s = _best(1, _ready, reset, keys, tasks)[0] / size
    jax.block_until_ready(run(jax.random.PRNGKey(1), states))  # compile
    fast = host.fast[0] if host.fast else None
    if fast:
      fast.batch.step = mj_timed = _Timed(fast.batch.step)
    timed.seconds = 0.0
    seconds, total = _best(FLAGS.repeats, _ready, run, jax.random.PRNGKey(2), states)
    rate = size * FLAGS.steps / seconds
    share = timed.seconds / total
    parts = f"host call {share:.0%}"
    if fast:
      mj = mj_timed.seconds / total
      same = size * FLAGS.steps * FLAGS.repeats / mj_timed.seconds
      parts += (f": MuJoCo step {mj:.0%}, observation/reward/copies {share - mj:.0%}; "
                f"its MuJoCo steps alone {same:,.0f}/s")
    succeeded = float(run(jax.random.PRNGKey(2), states).info["success"].mean())
    jax.block_until_ready(expert(states))
    expert_s = _best(FLAGS.repeats, _ready, expert, states)[0] / size
    print(f"B={size}: physics 1 thread {raw:,.0f}, batch {physics:,.0f} | callback {rate:,.0f} "
          f"({rate / raw:.2f}x 1 thread, {rate / physics:.2f}x batch; {parts}; "
          f"{succeeded:.0%} held) | reset {reset_s * 1e3:.2f} ms/episode | expert "
          f"{expert_s * 1e6:.0f} us/action")


if __name__ == "__main__":
  app.run(main)
