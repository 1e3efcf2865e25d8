"""Speed of AMF-NN: prints figures, with ratios measured in the same run.

  python -m benchmarks.active_finetune [--config=configs/active_finetune.py:reacher]

1. Selection latency per round (occupancy estimate, network kernel, GP covariance, greedy
   batch) against the number of candidate tasks K and of target points (K x m x H/stride),
   for 1 seed and 10 vmapped seeds.
2. One round (select, demonstrate, fine-tune, evaluate) for 1 seed vs 10 vmapped seeds, and
   the ratio; compile time vs run time of the 10-seed program.
3. The whole AMF run at the config's scale (10 seeds, every round, one pre-training mix) end
   to end: pre-training, compilation, checkpoints, CSVs and figures, in a fresh workdir.
4. `profile`: one round of the config's vmapped runs (`num_seeds` AMF runs) by part, per
   run-round: fine-tuning (and the same without the forgetting mode's prior and gate),
   evaluation physics, demonstrations, occupancy, network kernel + GP, the selection rule,
   the whole round, its compilation and a checkpoint; and fine-tuning's achieved FLOP/s
   against a plain float32 matmul's on this machine (the floor a run cannot beat).
5. `evaluation`: a round's evaluation of the config's vmapped runs with a task's episodes side
   by side against `eval_episode_batch` episodes per run side by side (default 2), and how far
   their numbers differ.
"""
import tempfile
import time

import jax
import jax.numpy as jnp
from absl import flags
from ml_collections import config_flags

from amf import checkpoint, cli, data as data_lib, occupancy
from amf.active import LoopConfig, make_loop, split
from amf.rollout import evaluate
from experiments import active_finetune, common

_TASKS = flags.DEFINE_list("tasks", ["4", "8", "16", "32"], "Candidate task counts K (part 1).")
_SAMPLES = flags.DEFINE_list("samples", ["1", "2", "4"], "Estimated trajectories m per task "
                             "(part 1, at K = the config's).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (the best is reported).")
_PARTS = flags.DEFINE_list("parts", ["selection", "seeds", "full"], "Parts to run "
                           "(selection, seeds, full, profile, evaluation).")


def prepared(config, num_seeds: int, with_parts: bool = False, **overrides):
  """The loop and pre-trained initial carries of `num_seeds` runs (one mix); `with_parts`:
  also the environment and the learner."""
  c = config.copy_and_resolve_references()
  c.num_seeds, c.mixes, c.methods = num_seeds, ("subset",), ("amf",)
  with c.unlocked():  # e.g. env_kwargs.num_tasks, absent from reacher's defaults
    c.update(overrides)
  env, _ = active_finetune.validate(c)
  learner = active_finetune.learner(c, env)
  runs = active_finetune.runs(c, env)
  loop = make_loop(env, learner, LoopConfig.from_config(c, c.methods))
  initial = jax.block_until_ready(jax.jit(jax.vmap(loop.init))(runs.keys, runs.weights))
  return (c, loop, initial, env, learner) if with_parts else (c, loop, initial)


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
  settings = [(int(n), config.occupancy_samples) for n in _TASKS.value]
  settings += [(config.env_kwargs.get("num_tasks", 8), int(m)) for m in _SAMPLES.value
               if int(m) != config.occupancy_samples]
  for num_tasks, m in settings:
    overrides = dict(occupancy_samples=m, env_kwargs=dict(config.env_kwargs, num_tasks=num_tasks))
    one, points = selection_latency(config, 1, **overrides)
    ten, _ = selection_latency(config, 10, **overrides)
    print(f"{num_tasks:>4} {m:>3} {points:>10} {one * 1e3:>9.1f} {ten * 1e3:>9.1f} "
          f"{ten / one:>6.2f}",
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


def timed(fn, *args) -> tuple[float, float, float]:
  """`(compile seconds, best run seconds, FLOPs by XLA's cost analysis)`; XLA counts a loop's
  body once, so for fine-tuning the FLOPs are one BC step's."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  flops = (cost[0] if isinstance(cost, list) else cost or {}).get("flops", 0.0)
  return compile_s, common.best_time(_REPEATS.value, compiled, *args), flops


def matmul_flops(n: int = 1024) -> float:
  """FLOP/s of a float32 (n, n) matmul on this machine: the floor of dense work."""
  a = jnp.ones((n, n), jnp.float32)
  _, seconds, _ = timed(jnp.dot, a, a)
  return 2 * n ** 3 / seconds


def evaluation(c, env, learner):
  """A round's evaluation of vmapped runs: `(states, keys, targets) -> Evaluation`."""
  def one(state, key, targets):
    actor = lambda s: learner.act(state, s.obs, env.task_features(s.info["task"]))
    return evaluate(env, actor, key, targets, c.eval_episodes, c.eval_task_batch,
                    c.eval_episode_batch)
  return jax.vmap(one)


def part_evaluation(config):
  """A round's evaluation of the config's vmapped runs with every episode of a task side by
  side (`eval_task_batch=1`) against `eval_episode_batch` episodes per run side by side."""
  n = config.num_seeds
  c, _, initial, env, learner = prepared(config, n, with_parts=True)
  keys = jax.random.split(jax.random.PRNGKey(1), n)
  args = (initial.learner, keys, initial.targets)
  chunk = c.eval_episode_batch or 2
  print(f"5. Evaluation: {c.env}, {n} vmapped runs, {c.eval_episodes} episodes x "
        f"{initial.targets.shape[1]} targets; ms per run-round", flush=True)
  runs = {}
  for label, episode_batch in (("a task's episodes side by side", 0),
                               (f"{chunk} episodes per run side by side", chunk)):
    variant = c.copy_and_resolve_references()
    variant.eval_episode_batch = episode_batch
    fn = jax.jit(evaluation(variant, env, learner))
    result = jax.block_until_ready(fn(*args))  # compiles
    runs[label] = (common.best_time(_REPEATS.value, fn, *args), result)
    print(f"  {label:<40}{runs[label][0] / n * 1e3:>10.1f}", flush=True)
  (whole, a), (chunked, b) = runs.values()
  print(f"  ratio {whole / chunked:.2f}x; largest difference of a run's per-target mean "
        f"success {float(jnp.abs(a.success - b.success).max()):.3f}, return "
        f"{float(jnp.abs(a.ret - b.ret).max()):.3f} (contact physics, floats reassociated)")


def part_profile(config):
  n = config.num_seeds
  c, loop, initial, env, learner = prepared(config, n, with_parts=True)
  b = c.batch_size
  print(f"4. One round by part: {c.env}, {n} vmapped AMF runs, batch {b}, "
        f"{c.finetune_steps} fine-tuning steps ({c.forgetting}), {c.eval_episodes} evaluation "
        f"episodes x {initial.targets.shape[1]} targets; ms per run-round", flush=True)
  keys = jax.random.split(jax.random.PRNGKey(1), n)
  asked = jax.vmap(loop.select)(initial, keys)
  new = jax.vmap(lambda key, t, i: data_lib.demonstrate_tasks(env, key, t, i, c.demo_noise))(
      keys, asked.tasks, asked.ids)
  data = jax.vmap(lambda d, x: data_lib.write(d, c.pretrain_size + jnp.arange(b), x))(
      initial.data, new)
  def fit(l):
    return jax.vmap(lambda s, d, key: l.update(s, *split(d, c.pretrain_size), key))

  def occupancy_of(state, d, key):
    ctx = occupancy.Context(env, d, lambda *x: learner.log_prob(state, *x), c.occupancy_samples,
                            lambda *x: learner.act(state, *x), c.critic)
    return occupancy.get(c.estimators[0])(ctx, key)(env.tasks)

  parts = {
      "fine-tuning": (fit(learner), initial.learner, data, keys),
      "evaluation physics": (evaluation(c, env, learner), initial.learner, keys,
                             initial.targets),
      "demonstrations": (jax.vmap(lambda key, t, i: data_lib.demonstrate_tasks(
          env, key, t, i, c.demo_noise)), keys, asked.tasks, asked.ids),
      "occupancy": (jax.vmap(occupancy_of), initial.learner, initial.data, keys),
      "occupancy + kernel + GP": (jax.vmap(loop.scoring), initial, keys),
      "selection (all of it)": (jax.vmap(loop.select), initial, keys),
      "whole round": (jax.vmap(loop.advance, in_axes=(0, None)), initial, 1),
  }
  if c.forgetting != "none":
    plain = c.copy_and_resolve_references()
    plain.forgetting = "none"
    bare = active_finetune.learner(plain, env)
    start = jax.vmap(lambda s, key: bare.mitigation.init(learner.mitigation.kernel_params(s), key))
    parts[f"fine-tuning without {c.forgetting}"] = (fit(bare), start(initial.learner, keys),
                                                   data, keys)
  results = {}
  for name, (fn, *args) in parts.items():
    results[name] = timed(fn, *args)
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    checkpoint.save(f"{tmp}/round", initial)
    results["checkpoint (save)"] = (0.0, time.perf_counter() - start, 0.0)
  whole = results["whole round"][1]
  print(f"{'part':<36}{'ms/run-round':>13}{'share':>7}{'compile s':>10}")
  for name, (compile_s, seconds, _) in results.items():
    print(f"{name:<36}{seconds / n * 1e3:>13.1f}{seconds / whole:>7.0%}{compile_s:>10.1f}")
  _, seconds, step_flops = results["fine-tuning"]
  print(f"fine-tuning: {step_flops * c.finetune_steps / seconds / 1e9:.2f} GFLOP/s (XLA's count "
        f"of a step x {c.finetune_steps} steps); a float32 1024^2 matmul here: "
        f"{matmul_flops() / 1e9:.1f} GFLOP/s (the floor)")


def main(argv):
  del argv
  config = flags.FLAGS.config
  print(f"AMF-NN on {config.env}: {jax.device_count()} {jax.devices()[0].platform} device(s)")
  parts = {"selection": part_selection, "seeds": part_seeds, "full": part_full,
           "profile": part_profile, "evaluation": part_evaluation}
  for name in _PARTS.value:
    parts[name](config)


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", "configs/active_finetune.py:reacher")
  cli.run(main)
