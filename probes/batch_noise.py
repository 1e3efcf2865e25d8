"""Why do greedy batches repeat a task? AMF's first batch with a fixed and a fitted noise.

  python -m probes.batch_noise --config=configs/active_finetune.py:pusher \
      --config.kernels="('last_layer','loss_gradient','dropout')" --config.mixes="('subset',)"

Pre-trains the config's runs (every seed of every mix, as `experiments.active_finetune` does,
so the same runs) and, for each kernel, scores the first round twice: with the constant
observation noise `noise` and with the noise of maximal marginal likelihood of the
demonstrations' actions (`fit_noise`). For each it prints the noise, the distinct tasks in
AMF's batch of `batch_size`, how much one pick lowers its own task's score after the greedy
step conditions on it (alpha after / alpha before; near 1 the model expects a second
demonstration of the task to teach almost as much as the first), and the best other
candidate's score against it (below 1, the batch repeats the pick).
Writes batch_noise.csv into --workdir.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from amf import acquisition, metrics, sweep
from amf.active import LoopConfig, choose, make_loop, round_streams
from experiments import active_finetune, common

COLUMNS = ("kernel", "fit_noise", "seed", "variant", "noise", "distinct", "batch_size",
           "first", "alpha_first", "alpha_first_after", "alpha_other", "alpha_other_after")


def run(config, workdir: str, overwrite: bool = False) -> list[dict]:
  env, _ = active_finetune.validate(config)
  common.prepare_workdir(config, workdir, overwrite)
  batch = active_finetune.runs(config, env)
  rows = []
  initial = None
  for fit in (False, True):
    learner = active_finetune.learner(dict(config, fit_noise=fit), env)
    loop = make_loop(env, learner, LoopConfig.from_config(config, ("amf",)))
    if initial is None:  # the learner's noise setting does not enter pre-training
      initial = sweep.pretrained(loop.init, batch, workdir)

    def first_batch(carry):
      s = loop.scoring(carry, round_streams(carry.key)["selection"])
      alpha = acquisition.scores(s.cov, s.noise, s.targets, s.candidates)
      chosen, _ = acquisition.greedy_batch(s.cov, s.noise, s.targets, s.candidates,
                                           config.batch_size)
      first = chosen[0]
      likeliest = s.candidates.index[first, jnp.argmax(s.candidates.weights[first])]
      after = acquisition.scores(acquisition.condition(s.cov, s.noise, likeliest), s.noise,
                                 s.targets, s.candidates)
      # The best other candidate, before and after the pick: a repeat means it stays below.
      others = jnp.arange(alpha.shape[0]) != first
      best = lambda a: jnp.max(jnp.where(others, a, -jnp.inf))
      return s.noise, chosen, alpha[first], after[first], best(alpha), best(after)

    program = jax.jit(jax.vmap(first_batch))
    for j, kernel in enumerate(config.kernels):
      noise, chosen, before, after, other, other_after = (
          np.asarray(x) for x in program(choose(initial, kernel=j)))
      for j, seed in enumerate(batch.seeds):
        rows.append(dict(kernel=kernel, fit_noise=fit, seed=int(seed), variant=batch.variants[j],
                         noise=float(noise[j]), distinct=len(set(chosen[j].tolist())),
                         batch_size=config.batch_size, first=int(chosen[j, 0]),
                         alpha_first=float(before[j]), alpha_first_after=float(after[j]),
                         alpha_other=float(other[j]), alpha_other_after=float(other_after[j])))
      own = [r for r in rows if (r["kernel"], r["fit_noise"]) == (kernel, fit)]
      logging.info("%s, %s noise: noise %.3f (median), distinct tasks per batch %.2f, batches "
                   "with a repeat %.0f%%, alpha after / before one pick %.2f (median), the best "
                   "other candidate's alpha after the pick / the pick's %.2f (median)", kernel,
                   "fitted" if fit else "fixed", np.median([r["noise"] for r in own]),
                   np.mean([r["distinct"] for r in own]),
                   100 * np.mean([r["distinct"] < r["batch_size"] for r in own]),
                   np.median([r["alpha_first_after"] / r["alpha_first"] for r in own]),
                   np.median([r["alpha_other_after"] / r["alpha_first_after"] for r in own]))
  metrics.write_csv(os.path.join(workdir, "batch_noise.csv"), rows, COLUMNS)
  return rows


if __name__ == "__main__":
  common.main(run, "configs/active_finetune.py:pusher", "runs/batch_noise")
