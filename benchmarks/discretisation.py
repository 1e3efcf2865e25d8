"""Selection latency in a continuous task space: against the number of candidates G and the
continuous proposal's number of starts. Prints a table (ratios against the grid of 2).

  python -m benchmarks.discretisation --study_env=integrator_gp
  python -m benchmarks.discretisation --study_env=reacher --seeds=10

Each row is one AMF selection (occupancy estimates, covariance over the targets' and the
candidates' inputs, the proposal, the greedy batch), jitted and vmapped over `--seeds` runs on
the discretisation study's settings (`configs/studies/discretisation.py`).
"""
import jax
from absl import flags

from amf import cli
from amf.active import LoopConfig, make_loop
from experiments import common
from probes import discretisation_runs

_ENV = flags.DEFINE_enum("study_env", "integrator_gp", list(discretisation_runs.PROCESSES),
                         "Environment (and learner) of the discretisation study.")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Runs selected side by side (vmapped).")
_GRID = flags.DEFINE_list("grid", ["2", "4", "8", "16", "32"], "Candidate counts G.")
_STARTS = flags.DEFINE_list("starts", ["1", "2", "4", "8"], "Starts of the continuous "
                            "proposal (at G = 16).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repetitions (the best is reported).")


def latency(env, learner, c, initial, proposal: str, **overrides) -> float:
  c = c.copy_and_resolve_references()
  c.update(overrides)
  loop = make_loop(env, learner, LoopConfig.from_config(c, c.methods, proposal))
  select = jax.jit(jax.vmap(loop.select))
  keys = jax.random.split(jax.random.PRNGKey(1), initial.round.shape[0])
  jax.block_until_ready(select(initial, keys))
  return common.best_time(_REPEATS.value, select, initial, keys)


def main(argv):
  del argv
  module, c = discretisation_runs.study_config(_ENV.value, _SEEDS.value)
  env, learner, initial = discretisation_runs.setup(module, c)
  print(f"Selection latency per round (ms), {_ENV.value}, {_SEEDS.value} seed(s), "
        f"{c.num_targets} targets x {c.occupancy_samples} trajectories, "
        f"{jax.devices()[0].platform}")
  print(f"{'proposal':>12} {'G':>4} {'starts':>6} {'steps':>5} {'ms':>9} {'x grid:2':>8}")
  base = None
  for g in map(int, _GRID.value):
    for proposal in (f"grid:{g}", "random"):
      ms = latency(env, learner, c, initial, proposal, num_candidates=g) * 1e3
      base = base or ms
      print(f"{proposal:>12} {g:>4} {'':>6} {'':>5} {ms:>9.1f} {ms / base:>8.2f}", flush=True)
  for starts in map(int, _STARTS.value):
    ascent = dict(c.ascent, starts=starts)
    ms = latency(env, learner, c, initial, "continuous", num_candidates=16, ascent=ascent) * 1e3
    print(f"{'continuous':>12} {16:>4} {starts:>6} {c.ascent.steps:>5} {ms:>9.1f} "
          f"{ms / base:>8.2f}", flush=True)


if __name__ == "__main__":
  cli.run(main)
