"""Does the continuous search do anything? How far it raises AMF's score over its best draw.

  python -m probes.search_gain --study_env=integrator_gp --seeds=10
  python -m probes.search_gain --study_env=reacher --seeds=10 --workdir=runs/search_gain

Replays the discretisation study's AMF runs with the `continuous` proposal
(`configs/studies/discretisation.py`, paper scale; the same seeds, pre-training and round keys,
so the same runs) and, before each round, scores its candidates: `num_candidates` draws from
mu and the `ascent.starts` tasks refined from the best of them. Per seed and round it records
the best draw's alpha, the best refined task's, their ratio, and whether AMF's first pick is a
refined task, and prints the distribution per round. Writes search_gain.csv into --workdir.
"""
import os

import jax
import numpy as np
from absl import flags

from amf import acquisition, cli, metrics
from amf.active import LoopConfig, make_loop, round_streams
from probes import discretisation_runs

_ENV = flags.DEFINE_enum("study_env", "integrator_gp", list(discretisation_runs.PROCESSES),
                         "Environment (and learner) of the discretisation study.")
_SEEDS = flags.DEFINE_integer("seeds", 10, "Runs (seeds), vmapped.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/search_gain", "Where search_gain.csv goes.")

COLUMNS = ("env", "seed", "round", "best_draw", "best_refined", "ratio", "refined_chosen")


def main(argv):
  del argv
  module, c = discretisation_runs.study_config(_ENV.value, _SEEDS.value)
  env, learner, carry = discretisation_runs.setup(module, c, short_pretraining=False)
  loop = make_loop(env, learner, LoopConfig.from_config(c, c.methods, "continuous"))
  draws = c.num_candidates

  def look(carry):
    """AMF's scores of this round's candidates, with the key its selection will use."""
    scored = loop.scoring(carry, round_streams(carry.key)["selection"])
    alpha = acquisition.scores(scored.cov, scored.noise, scored.targets, scored.candidates)
    return alpha[:draws].max(), alpha[draws:].max(), alpha.argmax() >= draws

  look = jax.jit(jax.vmap(look))
  advance = jax.jit(jax.vmap(lambda c: loop.advance(c, 1)))
  rows = []
  print(f"Continuous search on {_ENV.value}: alpha of the best refined task / of the best of "
        f"{draws} draws ({c.ascent.starts} starts x {c.ascent.steps} steps), {_SEEDS.value} seeds")
  print(f"{'round':>5} {'median':>7} {'q10':>6} {'q90':>6} {'refined picked':>15}")
  rounds = c.budget // c.batch_size
  for r in range(rounds):
    best_draw, best_refined, chosen = (np.asarray(x) for x in look(carry))
    ratio = best_refined / np.maximum(best_draw, 1e-12)
    rows += [dict(env=_ENV.value, seed=s, round=r, best_draw=float(best_draw[s]),
                  best_refined=float(best_refined[s]), ratio=float(ratio[s]),
                  refined_chosen=int(chosen[s])) for s in range(_SEEDS.value)]
    q10, med, q90 = np.quantile(ratio, [0.1, 0.5, 0.9])
    print(f"{r:>5} {med:>7.3f} {q10:>6.3f} {q90:>6.3f} {chosen.mean():>15.2f}", flush=True)
    if r + 1 < rounds:
      carry = advance(carry)
  ratio = np.array([row["ratio"] for row in rows])
  print(f"all rounds: median ratio {np.median(ratio):.3f}, refined task picked in "
        f"{np.mean([row['refined_chosen'] for row in rows]):.0%} of {len(rows)} rounds")
  os.makedirs(_WORKDIR.value, exist_ok=True)
  metrics.write_csv(os.path.join(_WORKDIR.value, "search_gain.csv"), rows, COLUMNS)


if __name__ == "__main__":
  cli.run(main)
