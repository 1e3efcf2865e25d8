"""Speed of AMF-NN: prints figures, with ratios measured in the same run.

  python -m experiments.bench_active_finetune [--config=configs/active_finetune.py:reacher]

1. Selection latency per round (occupancy estimate, network kernel, GP covariance, greedy
   batch) against the number of candidate tasks K and of target points (K x m x H/stride),
   for 1 seed and 10 vmapped seeds.
2. One round (select, demonstrate, fine-tune, evaluate) for 1 seed vs 10 vmapped seeds, and
   the ratio; compile time vs run time of the 10-seed program.
3. The whole AMF run at the config's scale (10 seeds, every round, one pre-training mix) end
   to end: pre-training, compilation, checkpoints, CSVs and figures, in a fresh workdir.
"""
import tempfile
import time

import jax
from absl import flags
from ml_collections import config_flags

from amf import cli
from amf.active import LoopConfig, make_loop
from experiments import active_finetune, common

_TASKS = flags.DEFINE_list("tasks", ["4", "8", "16", "32"], "Candidate task counts K (part 1).")
_SAMPLES = flags.DEFINE_list("samples", ["1", "2", "4"], "Estimated trajectories m per task "
                             "(part 1, at K = the config's).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (the best is reported).")
_PARTS = flags.DEFINE_list("parts", ["selection", "seeds", "full"], "Parts to run.")


def prepared(config, num_seeds: int, **overrides):
  """The loop and pre-trained initial carries of `num_seeds` runs (one mix)."""
  c = config.copy_and_resolve_references()
  c.num_seeds, c.mixes, c.methods = num_seeds, ("subset",), ("amf",)
  with c.unlocked():  # e.g. env_kwargs.num_tasks, absent from reacher's defaults
    c.update(overrides)
  env, _ = active_finetune.validate(c)
  learner = active_finetune.learner(c, env)
  runs = active_finetune.runs(c, env)
  loop = make_loop(env, learner, LoopConfig.from_config(c, c.methods))
  initial = jax.block_until_ready(jax.jit(jax.vmap(loop.init))(runs.keys, runs.weights))
  return c, loop, initial


def selection_latency(config, seeds: int, **overrides) -> tuple[float, int]:
  c, loop, initial = prepared(config, seeds, pretrain_steps=100, **overrides)
  select = jax.jit(jax.vmap(loop.select))
  keys = jax.random.split(jax.random.PRNGKey(1), seeds)
  jax.block_until_ready(select(initial, keys))
  num_tasks = initial.returns.shape[-1]
  horizon = initial.data.obs.shape[-2]
  points = num_tasks * c.occupancy_samples * len(range(0, horizon, c.stride))
  return common.best_time(_REPEATS.value, select, initial, keys), points


def part_selection(config):
  print("1. Selection latency per round (ms), AMF with "
        f"{config.kernels[0]} / {config.estimators[0]}")
  print(f"{'K':>4} {'m':>3} {'target pts':>10} {'1 seed':>9} {'10 seeds':>9} {'ratio':>6}")
  settings = [(int(k), config.occupancy_samples) for k in _TASKS.value]
  settings += [(config.env_kwargs.get("num_tasks", 8), int(m)) for m in _SAMPLES.value
               if int(m) != config.occupancy_samples]
  for k, m in settings:
    overrides = dict(occupancy_samples=m, env_kwargs=dict(config.env_kwargs, num_tasks=k))
    one, points = selection_latency(config, 1, **overrides)
    ten, _ = selection_latency(config, 10, **overrides)
    print(f"{k:>4} {m:>3} {points:>10} {one * 1e3:>9.1f} {ten * 1e3:>9.1f} {ten / one:>6.2f}",
          flush=True)


def part_seeds(config):
  print(f"2. One round ({config.finetune_steps} fine-tuning steps), 1 vs 10 vmapped seeds")
  results = {}
  for seeds in (1, 10):
    _, loop, initial = prepared(config, seeds)
    advance = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))
    start = time.perf_counter()
    compiled = advance.lower(initial, 1).compile()
    compile_s = time.perf_counter() - start
    run_s = common.best_time(_REPEATS.value, compiled, initial, 1)
    results[seeds] = (compile_s, run_s)
    print(f"{seeds:>2} seed(s): compile {compile_s:6.1f}s | one round {run_s:6.2f}s", flush=True)
  print(f"10 vmapped seeds cost {results[10][1] / results[1][1]:.2f}x one seed; "
        f"compile vs run of one round (10 seeds): {results[10][0]:.1f}s vs {results[10][1]:.2f}s")


def part_full(config):
  c = config.copy_and_resolve_references()
  c.mixes, c.methods = ("subset",), ("amf",)
  print(f"3. Full AMF run: {c.env}, {c.num_seeds} seeds x {c.budget // c.batch_size} rounds, "
        f"{c.finetune_steps} fine-tuning steps per round, end to end", flush=True)
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    active_finetune.run(c, workdir)
    total = time.perf_counter() - start
  print(f"   {total:.0f}s = {total / 60:.1f} min (goal on reacher: under 10 min)")


def main(argv):
  del argv
  config = flags.FLAGS.config
  print(f"AMF-NN on {config.env}: {jax.device_count()} {jax.devices()[0].platform} device(s)")
  parts = {"selection": part_selection, "seeds": part_seeds, "full": part_full}
  for name in _PARTS.value:
    parts[name](config)


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", "configs/active_finetune.py:reacher")
  cli.run(main)
