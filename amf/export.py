"""From an experiment's workdir to `amf.suggest`'s inputs: one run's policy, demonstrations and
question at one round.

  python -m amf.export --workdir=runs/reacher --method=amf --seed=0 --round=3 --out=export
  python -m amf.suggest --policy=export/policy --demos=export/demos.npz \
      --tasks=export/tasks.json --out=export/answer

A run is `(method, variant, seed)` of an AMF-NN experiment (`experiments.active_finetune`);
`--round=r` gives its learner and demonstrations after `r` rounds, the selection key of round
`r + 1` and the loop's question (its batch size, estimator, kernel, proposal, stride, targets),
so on an AMF arm `amf.suggest` asks for what the loop asked for next (`export.json` records
what the run's method asked; on another method's run it is AMF's answer in that state). A
sweep keeps the carry after every chunk of `checkpoint_every` rounds (`amf.sweep.run`); a
round between two is re-advanced from the one before it by the sweep's own program on the
same runs, which gives the same numbers. Round 0 is the pre-trained policy (`checkpoints/pretrained`).
"""
import json
import os
import pathlib

import jax
import numpy as np

from amf import checkpoint, cli, envs, suggest, sweep
from amf.active import make_loop, round_streams


def _run_index(batch: sweep.Runs, variant: str, seed: int) -> int:
  pairs = list(zip(batch.variants, batch.seeds.tolist()))
  variant = variant or batch.variants[0]
  if (variant, seed) not in pairs:
    raise ValueError(f"no run with variant {variant!r} and seed {seed}; the runs are "
                     f"variants {sorted(set(batch.variants))} x seeds "
                     f"0..{max(batch.seeds.tolist())}.")
  return pairs.index((variant, seed))


def _arm(spec: sweep.Spec, method: str):
  """`(program, members, arm)` of the method labelled `method` (`amf.sweep.program_arms`)."""
  labels = []
  for program, members, _ in sweep.program_arms(spec):
    for arm in members:
      if arm[0] == method:
        return program, members, arm
      labels.append(arm[0])
  raise ValueError(f"no method {method!r} in this experiment; choose one of {labels}.")


def export(workdir: str, method: str, seed: int, round_: int, out: str,
           variant: str = "") -> dict:
  """Writes `out/policy`, `out/demos.npz`, `out/tasks.json` and `out/export.json` for run
  `(method, variant, seed)` after `round_` rounds; returns export.json's record."""
  from experiments import active_finetune  # the NN experiment's runs (its mixes and seeds)
  config = active_finetune.read_config(workdir, "export")
  workdir = pathlib.Path(workdir)
  env = envs.make(config.env, **config.env_kwargs)
  learner = active_finetune.learner(config, env)
  batch = active_finetune.runs(config, env)
  j, n = _run_index(batch, variant, seed), len(batch.keys)
  spec = sweep.Spec.from_config(config)
  program, members, (label, s, e, k) = _arm(spec, method)
  num_rounds = spec.loop.num_rounds
  if not 0 <= round_ <= num_rounds:
    raise ValueError(f"round must be in 0..{num_rounds}, got {round_}.")
  directory = workdir / "checkpoints" / sweep.checkpoint_tag(program, members, members)
  if not directory.is_dir():
    raise ValueError(f"export: {directory} not found: the run's checkpoints (an arm read "
                     "from a plan's store keeps its tables only).")
  loop = make_loop(env, learner, spec.program(program))
  # The sweep's batch of this program's runs before round 1 (`sweep.compute`).
  initial = jax.eval_shape(jax.vmap(make_loop(env, learner, spec.loop).init), batch.keys,
                           batch.weights)
  pre = checkpoint.restore(str(workdir / "checkpoints" / "pretrained"), initial)
  carry = sweep.arm_batch(pre, members)
  index = members.index((label, s, e, k)) * n + j
  progress = checkpoint.Progress(str(directory), max_to_keep=None)
  done = max([t for t in progress.steps() if t <= round_], default=0)
  if done:
    carry = progress.restore(done, carry)
  final = progress.restore(max(progress.steps()), carry) if progress.steps() else None
  progress.close()
  if done < round_:
    # The sweep's call on the runs it advanced together (`sweep.batched_advance`): the same
    # program on the same inputs, so the same numbers.
    runs = _chunk(carry, index, config.max_runs_per_call)
    part = sweep.batched_advance(loop.advance, config.max_runs_per_call)(
        jax.tree.map(lambda x: x[runs], carry), round_ - done)
    run = jax.tree.map(lambda x: x[list(runs).index(index)], part)
  else:
    run = jax.tree.map(lambda x: x[index], carry)
  out = pathlib.Path(out)
  question = suggest.Question.from_config(
      config, estimator=config.estimators[e], kernel=tuple(config.kernels)[k],
      proposal=program.proposal)
  suggest.save_policy(out / "policy", config.env, config.env_kwargs, config, run.learner,
                      round_streams(run.key)["selection"], question)
  suggest.save_demos(out / "demos.npz", run.data)
  tasks = ({} if question.task_space == "finite" else
           dict(targets=np.asarray(run.targets).tolist()))
  (out / "tasks.json").write_text(json.dumps(tasks))
  record = dict(workdir=str(workdir), method=label, variant=batch.variants[j], seed=seed,
                round=round_, demonstrations=int(np.asarray(run.data.mask).sum()))
  if final is not None and round_ < num_rounds and int(np.asarray(final.round)[index]) > round_:
    record["loop_asked"] = np.asarray(final.asked)[index, round_].tolist()
  checkpoint.save_json(str(out / "export.json"), record, indent=1)
  return record


def _chunk(carry, index: int, max_runs: int) -> np.ndarray:
  """The runs the sweep advanced in one call with run `index` (`sweep.batched_advance`)."""
  for _, group in sweep.arm_groups(carry):
    for runs in sweep.chunks(group, max_runs):
      if index in runs:
        return runs
  raise AssertionError(index)


def main(argv) -> None:
  from absl import flags
  del argv
  f = flags.FLAGS
  if pathlib.Path(f.out).exists() and any(pathlib.Path(f.out).iterdir()):
    raise ValueError(f"--out={f.out} exists and is not empty; name a new directory.")
  record = export(f.workdir, f.method, f.seed, f.round, f.out, f.variant)
  print(f"Wrote {os.path.join(f.out, 'policy')}, demos.npz, tasks.json and export.json "
        f"({record['method']}, {record['variant']}, seed {record['seed']}, round "
        f"{record['round']}: {record['demonstrations']} demonstrations"
        + (f"; the loop asked for {record['loop_asked']} next)." if "loop_asked" in record
           else ")."))


def _flags() -> None:
  from absl import flags
  flags.DEFINE_string("workdir", None, "An AMF-NN experiment's workdir (its config.json and "
                      "checkpoints/).")
  flags.DEFINE_string("method", "amf", "The method's label (as in metrics.csv).")
  flags.DEFINE_string("variant", "", "The run's pre-training mix label (as in metrics.csv; "
                      "default: the first).")
  flags.DEFINE_integer("seed", 0, "The run's seed.")
  flags.DEFINE_integer("round", 0, "Rounds done: the policy and demonstrations after them.")
  flags.DEFINE_string("out", None, "A new directory for the exported files.")
  flags.mark_flags_as_required(["workdir", "out"])


if __name__ == "__main__":
  _flags()
  cli.run(main)
