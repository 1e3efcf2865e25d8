"""Speed of AMF-GP on the integrator: prints figures, with ratios measured in the same run.

  python -m benchmarks.integrator_gp [--config=configs/integrator_gp.py] [--k=6]

1. 1 seed vs 10 vmapped seeds: run time of all rounds (after compilation), and the ratio.
2. Selection alone per round (AMF's scores + greedy batch), 1 seed and 10 vmapped seeds.
3. Compile time vs run time of the 10-seed AMF program.
4. The whole paper-scale sweep (every k x 10 seeds x 3 methods) end to end, compilation,
   checkpoints, CSVs and figures included, in a fresh temporary workdir.
"""
import tempfile
import time

import jax
from absl import flags
from ml_collections import config_flags

from amf import cli
from amf.active import LoopConfig, make_loop
from experiments import common, integrator_gp

_K = flags.DEFINE_integer("k", 6, "Pre-training covers the first k tasks in parts 1-3.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (the best is reported).")


def runs_for(config, num_seeds: int):
  single = config.copy_and_resolve_references()
  single.num_seeds, single.ks = num_seeds, (_K.value,)
  return integrator_gp.setup(single)


def main(argv):
  del argv
  config = flags.FLAGS.config
  rounds = config.budget // config.batch_size
  print(f"AMF-GP on the integrator: {rounds} rounds, B={config.batch_size}, "
        f"k={_K.value}, {jax.device_count()} {jax.devices()[0].platform} device(s)")

  results = {}
  for seeds in (1, 10):
    env, learner, (keys, weights, _, _) = runs_for(config, seeds)
    loop = make_loop(env, learner, LoopConfig.from_config(config, ["amf"]))
    initial = jax.jit(jax.vmap(loop.init))(keys, weights)
    advance = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))
    select = jax.jit(jax.vmap(loop.select))
    start = time.perf_counter()
    compiled = advance.lower(initial, rounds).compile()
    compile_s = time.perf_counter() - start
    run_s = common.best_time(_REPEATS.value, compiled, initial, rounds)
    select_s = common.best_time(_REPEATS.value, select, initial, keys)
    results[seeds] = (compile_s, run_s, select_s)
    print(f"{seeds:>2} seed(s): compile {compile_s:6.2f}s | all {rounds} rounds {run_s:6.3f}s "
          f"({run_s / rounds * 1e3:6.1f} ms/round) | selection {select_s * 1e3:6.1f} ms/round")
  ratio = results[10][1] / results[1][1]
  print(f"10 vmapped seeds cost {ratio:.2f}x one seed (goal: at most 3x); "
        f"selection {results[10][2] / results[1][2]:.2f}x")
  print(f"compile vs run (10 seeds): {results[10][0]:.2f}s vs {results[10][1]:.3f}s")

  paper = config.copy_and_resolve_references()
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    integrator_gp.run(paper, workdir)
    total = time.perf_counter() - start
  runs = len(paper.ks) * paper.num_seeds * len(paper.methods)
  print(f"paper-scale sweep: {len(paper.ks)} k x {paper.num_seeds} seeds x "
        f"{len(paper.methods)} methods = {runs} runs in {total:.1f}s end to end "
        f"(goal: under 30 s)")


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", "configs/integrator_gp.py")
  cli.run(main)
