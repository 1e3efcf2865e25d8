"""Transfer width: what `n` demonstrations of task c give task c', against |c' - c|.

  python -m experiments.transfer --config=configs/transfer.py:reacher --workdir=runs/transfer

The discretisation study asks what a grid of G candidate tasks costs AMF; that depends on how
far one task's demonstrations reach. BC learns from scratch (the testbed's learner) on `base`
demonstrations of every other finite task, with and without `n` of one source task, and is
evaluated on tasks offset from the source along one task parameter at a time (both signs, as
fractions of the parameter's range); runs are vmapped over seeds and paired by seed (same
demonstrations, initialisation and evaluation keys). The gain at c' is success with the
source's demonstrations minus without; a parameter's transfer width is the largest offset whose
gain is at least half of the gain at the source itself. (With `base = 0` the network sees one
task only and ignores the task features: then only goals within the success threshold of the
source's can succeed.) Writes transfer.csv (one row per source x parameter x offset x seed x
arm), transfer_summary.csv, config.json and transfer.png.
"""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from amf import checkpoint, data, envs, metrics, plotting, sweep
from experiments import common, data_efficiency

COLUMNS = ("env", "source", "extra", "param", "offset", "unit_offset", "seed", "return",
           "success")


def validate(config: ml_collections.ConfigDict):
  env = envs.make(config.env, **config.env_kwargs)
  bad = [t for t in config.sources if not 0 <= t < env.num_tasks]
  if not config.sources or bad:
    raise ValueError(f"sources must be task ids of {config.env} (0..{env.num_tasks - 1}), "
                     f"got {tuple(config.sources)}.")
  if config.n < 1 or config.base < 0 or not config.offsets or min(config.offsets) < 0:
    raise ValueError(f"Need n >= 1, base >= 0 and offsets >= 0, got n={config.n}, "
                     f"base={config.base}, offsets={tuple(config.offsets)}.")
  common.validate_learner(config)
  return env


def probes(env, source: np.ndarray, offsets) -> list[tuple[int, float, float, np.ndarray]]:
  """`(param, offset, unit offset, task)` of every evaluated task inside the box."""
  box = env.task_space
  low, high = np.asarray(box.low), np.asarray(box.high)
  out = []
  for d in range(box.size):
    for u in sorted({s * u + 0.0 for u in offsets for s in (-1, 1)}):
      task = source.copy()
      task[d] += u * (high[d] - low[d])
      if box.periodic[d] or low[d] - 1e-6 <= task[d] <= high[d] + 1e-6:
        out.append((d, float(task[d] - source[d]), u, np.asarray(box.project(task))))
  return out


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False) -> list[dict]:
  env = validate(config)
  common.prepare_workdir(config, workdir, overwrite)
  seeds = np.arange(config.num_seeds)
  keys = sweep.seed_keys(config.seed, seeds)
  demo_keys, run_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
  # data_efficiency's run: the first `counts[t]` of the demonstrations of each task t.
  per_task = max(config.base, config.n)
  one = data_efficiency.make_run(config, env, per_task)
  ids = jnp.repeat(jnp.arange(env.num_tasks), per_task)
  demos = jax.jit(jax.vmap(lambda key: data.demonstrate(env, key, ids, config.demo_noise)))(
      demo_keys)
  program = jax.jit(jax.vmap(one, in_axes=(0, None, 0, None)))
  rows = []
  for source in config.sources:
    found = probes(env, np.asarray(env.tasks[source]), config.offsets)
    for extra in (0, config.n):
      counts = jnp.full(env.num_tasks, config.base, jnp.int32).at[source].set(extra)
      args = (demos, counts, run_keys, jnp.stack([t for *_, t in found]))
      path = os.path.join(workdir, "checkpoints", f"source={source}", f"extra={extra}")
      if os.path.exists(path):
        ret, success, _ = checkpoint.restore(path, jax.eval_shape(program, *args))
      else:
        result = jax.block_until_ready(program(*args))
        checkpoint.save(path, result)
        ret, success, _ = result
      for (d, offset, u, _), r, s in zip(found, np.asarray(ret).T, np.asarray(success).T):
        rows += [dict(env=config.env, source=source, extra=extra, param=d, offset=offset,
                      unit_offset=u, seed=int(seed), **{"return": float(r[i])},
                      success=float(s[i])) for i, seed in enumerate(seeds)]
  metrics.write_csv(os.path.join(workdir, "transfer.csv"), rows, COLUMNS)
  table = summary(rows)
  metrics.write_csv(os.path.join(workdir, "transfer_summary.csv"), table, list(table[0]))
  for (source, d), width in widths(table).items():
    logging.info("source %d, parameter %d: transfer width %.3f of its range", source, d, width)
  plotting.transfer(table, os.path.join(workdir, "transfer.png"),
                    title=f"BC on {config.env}: {config.base} demonstrations of every other "
                          f"task, with and without {config.n} of one")
  return rows


def summary(rows) -> list[dict]:
  """Per (source, parameter, offset): success with and without the source's demonstrations
  and their seed-paired gain, means with 90% CIs over seeds."""
  groups = {}
  for r in rows:
    key = (r["source"], r["param"], r["offset"], r["unit_offset"])
    groups.setdefault(key, {}).setdefault(r["extra"], {})[r["seed"]] = r["success"]
  out = []
  for (source, d, offset, u), arms in sorted(groups.items()):
    without, with_ = arms[0], arms[max(arms)]
    seeds = sorted(with_)
    gain = [with_[s] - without[s] for s in seeds]
    out.append(dict(source=source, param=d, offset=offset, unit_offset=u, n_seeds=len(seeds),
                    **metrics.interval("success", [with_[s] for s in seeds], 0.9),
                    **metrics.interval("base_success", [without[s] for s in seeds], 0.9),
                    **metrics.interval("gain", gain, 0.9)))
  return out


def widths(table) -> dict[tuple[int, int], float]:
  """Per (source, parameter): the largest |unit offset| whose gain is at least half of the
  gain at the source (the transfer width, as a fraction of the parameter's range)."""
  out = {}
  for key in {(r["source"], r["param"]) for r in table}:
    own = [r for r in table if (r["source"], r["param"]) == key]
    at_zero = next(r["gain_mean"] for r in own if r["unit_offset"] == 0)
    out[key] = max(abs(r["unit_offset"]) for r in own if r["gain_mean"] >= at_zero / 2)
  return out


if __name__ == "__main__":
  common.main(run, "configs/transfer.py", "runs/transfer")
