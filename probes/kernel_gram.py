"""How a process's network kernels differ on its pre-trained policies, and where each puts
the GP's uncertainty.

  python -m probes.kernel_gram --process=docs/ablations_paper/kernels_categorical/reacher \
      --workdir=runs/kernel_gram/reacher

`--process` is an AMF-NN workdir (`experiments.active_finetune`, finite task set): its
config.json and, where present, its pre-trained runs (`checkpoints/pretrained`; a fresh clone
lacks them, and they are pre-trained again the same way under --workdir). On every run, one
expert demonstration of each task (every `stride`-th state, as the loop scores) is the query;
per kernel it computes what AMF's scores start from: the GP's posterior variance at the query
given the run's pre-training demonstrations, scaled as the learner scales it
(`NNLearner.covariance`), averaged per task; and the kernel's correlation matrix over the
query, compared between each pair of kernels (mean and max |difference|, share of negative
correlations). A task is *covered* when the run's pre-training mix gives it weight; where the
process ran AMF with a kernel, the summary adds how many of that arm's demonstrations went to
covered tasks (its allocations.csv), to set beside where the kernel leaves the GP unsure. Writes
tasks.csv (run x kernel x task), pairs.csv (run x kernel pair), summary.csv and
kernel_gram.png and probe.json (what was asked; a rerun of the same reads the tables back) into
--workdir, and prints the summary: per kernel the share of the query's
posterior variance on covered tasks, with a seed-paired CI against the first kernel.
"""
import itertools
import json
import os
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags, logging

from amf import checkpoint, cli, data, envs, keys, metrics, sweep
from amf.active import make_loop
from experiments import active_finetune

TASK_COLUMNS = ("env", "variant", "seed", "kernel", "task", "covered", "success", "prior",
                "posterior")
PAIR_COLUMNS = ("env", "variant", "seed", "kernel_a", "kernel_b", "mean_abs_diff",
                "max_abs_diff", "negative_a", "negative_b")


def load(process: str) -> ml_collections.ConfigDict:
  """The process's config; refuses what is not a finite-task AMF-NN process."""
  config = active_finetune.read_config(process, "kernel_gram")
  if config.task_space != "finite":
    raise ValueError(f"kernel_gram: {process} has a {config.task_space} task space; the "
                     "per-task summary needs a finite one.")
  return config


def measure(learner, env, kernels: dict[str, int], stride: int):
  """`(state, data, key) -> (prior (K, T), posterior (K, T), corr (K, Q, Q), mask (Q,))` of
  one run: per kernel (`{name: its number in the process's config}`), the scaled prior and
  posterior variance per task and the correlation matrix over the query.

  The correlations come from the kernel over the query alone, not from the query's block of
  the joint Gram matrix that `covariance` builds with the demonstrations: the two are the same
  for an inductive kernel, and for a transductive one (`random_walk`) the query alone is the
  kernel's own similarity between tasks. A kernel's key serves both calls, so a stochastic one
  (`dropout`) draws the same networks for its variance and its correlations."""
  tasks = jnp.arange(env.num_tasks)

  def one(state, demos, key):
    s = keys.streams(key, ("demos", "kernel"))
    kernel_keys = keys.streams(s["kernel"], tuple(kernels))
    query, _, mask = data.dataset_inputs(
        env, data.every(data.demonstrate(env, s["demos"], tasks), stride))
    task_of = jnp.repeat(tasks, query.shape[0] // env.num_tasks)
    per_task = lambda v: jax.ops.segment_sum(jnp.where(mask, v, 0), task_of, env.num_tasks) / (
        jax.ops.segment_sum(mask.astype(v.dtype), task_of, env.num_tasks))
    out = []
    for name, k in kernels.items():  # a few kernels, each its own branch of `lax.switch`
      post, prior, _ = learner.covariance(state, demos, query, kernel_keys[name], jnp.int32(k))
      gram = learner.gram(state, query, kernel_keys[name], jnp.int32(k))
      sd = jnp.sqrt(jnp.maximum(jnp.diag(gram), 1e-30))
      out.append((per_task(prior), per_task(jnp.diag(post)), gram / sd[:, None] / sd[None]))
    prior, post, corr = (jnp.stack(x) for x in zip(*out))
    return prior, post, corr, mask

  return one


def pair_stats(corr: np.ndarray, mask: np.ndarray, a: int, b: int) -> dict:
  """Off-diagonal comparison of kernels `a` and `b`'s correlation matrices over valid rows."""
  valid = np.outer(mask, mask) & ~np.eye(mask.size, dtype=bool)
  ca, cb = corr[a][valid], corr[b][valid]
  diff = np.abs(ca - cb)
  return dict(mean_abs_diff=float(diff.mean()), max_abs_diff=float(diff.max()),
              negative_a=float((ca < 0).mean()), negative_b=float((cb < 0).mean()))


def covered_share(rows, kernel: str) -> np.ndarray:
  """Per run (ordered by variant, seed), the share of posterior variance on covered tasks."""
  by_run = {}
  for r in rows:
    if r["kernel"] == kernel:
      total, covered = by_run.get((r["variant"], r["seed"]), (0.0, 0.0))
      by_run[(r["variant"], r["seed"])] = (total + r["posterior"],
                                           covered + r["posterior"] * r["covered"])
  return np.array([c / t for _, (t, c) in sorted(by_run.items())])


def covered_demos(process: str, covered: dict, names) -> dict:
  """Per kernel, `(on covered tasks, all)` of the demonstrations the process's `amf/<kernel>`
  arm asked for (its allocations.csv; none where the process has no such table)."""
  path = os.path.join(process, "allocations.csv")
  rows = metrics.read_csv(path) if os.path.exists(path) else []
  out = {}
  for name in names:
    asked = [covered[(r["variant"], r["seed"])][r["task"]] for r in rows
             if r["method"] == f"amf/{name}" and r["task"] >= 0]
    if asked:
      out[name] = (int(np.sum(asked)), len(asked))
  return out


def summary(task_rows, pair_rows, names, demos: dict) -> list[dict]:
  out = []
  ref = covered_share(task_rows, names[0])
  for name in names:
    share = covered_share(task_rows, name)
    row = dict(kernel=name, **metrics.interval("covered_share", share, 0.9))
    if name != names[0]:
      row.update(metrics.interval("vs_first", share - ref, 0.9))
    pairs = [p for p in pair_rows if p["kernel_b"] == name and p["kernel_a"] == names[0]]
    if pairs:
      row["mean_abs_corr_diff"] = float(np.mean([p["mean_abs_diff"] for p in pairs]))
      row["max_abs_corr_diff"] = float(np.max([p["max_abs_diff"] for p in pairs]))
    row["negative_corr"] = float(np.mean(
        [p["negative_b"] if p["kernel_b"] == name else p["negative_a"] for p in pair_rows
         if name in (p["kernel_a"], p["kernel_b"])] or [np.nan]))
    if name in demos:
      row["covered_demos"], row["demos"] = demos[name]
    out.append(row)
  columns = {c: np.nan for r in out for c in r}
  return [{**columns, **r} for r in out]


def figure(task_rows, names, num_tasks: int, path) -> None:
  """Per kernel, each task's share of the query's posterior variance (kernels' scales differ),
  mean over runs; covered tasks shaded, round-0 success under each task."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(max(7.0, 1.6 + 0.8 * num_tasks), 3.6))
  width = 0.8 / len(names)
  for i, name in enumerate(names):
    post = {}
    for r in task_rows:
      if r["kernel"] == name:
        post.setdefault((r["variant"], r["seed"]), np.zeros(num_tasks))[r["task"]] = r["posterior"]
    share = np.mean([p / p.sum() for p in post.values()], axis=0)
    ax.bar(np.arange(num_tasks) + (i - (len(names) - 1) / 2) * width, share, width, label=name)
  success = [np.mean([r["success"] for r in task_rows
                      if r["task"] == t and r["kernel"] == names[0]]) for t in range(num_tasks)]
  for t in {r["task"] for r in task_rows if r["covered"]}:
    ax.axvspan(t - 0.45, t + 0.45, color="0.9", zorder=0)
  ax.set_xticks(range(num_tasks), [f"{t}\n{s:.2f}" for t, s in enumerate(success)])
  ax.set_xlabel("task (shaded: covered by pre-training) and its success after pre-training")
  ax.set_ylabel("share of posterior variance")
  ax.set_title("Where each kernel leaves the GP unsure after pre-training", fontsize=10)
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def compute(config, process: str, workdir: str, env, batch: sweep.Runs, covered: np.ndarray,
            kernel_names, seed: int, max_runs: int) -> tuple[list, list]:
  """tasks.csv's and pairs.csv's rows: the kernels on the process's pre-trained runs
  (`covered` (runs, tasks): the tasks each run's pre-training mix gives weight)."""
  learner = active_finetune.learner(config, env)
  spec = sweep.Spec.from_config(config)
  source = process if os.path.isdir(os.path.join(process, "checkpoints", "pretrained")) else workdir
  initial = sweep.pretrained(make_loop(env, learner, spec.loop).init, batch, source)
  ids = {k: tuple(config.kernels).index(k) for k in kernel_names}
  one = measure(learner, env, ids, config.stride)
  fn = jax.jit(lambda *xs: jax.lax.map(lambda x: one(*x), xs,
                                       batch_size=max_runs or len(batch.keys)))
  run_keys = jax.random.split(jax.random.PRNGKey(seed), len(batch.keys))
  prior, post, corr, mask = jax.device_get(fn(initial.learner, initial.data, run_keys))
  success = np.asarray(initial.success)[:, 0]
  task_rows, pair_rows = [], []
  for j, (variant, s) in enumerate(zip(batch.variants, batch.seeds.tolist())):
    run_id = dict(env=config.env, variant=variant, seed=s)
    task_rows += [dict(run_id, kernel=name, task=t, covered=int(covered[j, t]),
                       success=float(success[j, t]), prior=float(prior[j, i, t]),
                       posterior=float(post[j, i, t]))
                  for i, name in enumerate(kernel_names) for t in range(env.num_tasks)]
    pair_rows += [dict(run_id, kernel_a=kernel_names[a], kernel_b=kernel_names[b],
                       **pair_stats(corr[j], mask[j], a, b))
                  for a, b in itertools.combinations(range(len(kernel_names)), 2)]
  return task_rows, pair_rows


def run(process: str, workdir: str, kernel_names: tuple[str, ...], seed: int,
        max_runs: int = 0) -> list[dict]:
  """The probe on `process`'s runs, `max_runs` at a time (0: all at once); returns summary.csv's
  rows. A rerun with the same process config, kernels and seed (probe.json) reads its tables
  back and only redoes the summary, e.g. once the process's arms have finished."""
  config = load(process)
  kernel_names = tuple(kernel_names) or tuple(config.kernels)
  unknown = [k for k in kernel_names if k not in config.kernels]
  if len(kernel_names) < 2 or unknown:
    raise ValueError(f"--kernels needs two or more of the process's kernels "
                     f"{tuple(config.kernels)}, got {kernel_names}.")
  env = envs.make(config.env, **config.env_kwargs)
  batch = active_finetune.runs(config, env)
  covered = np.asarray(batch.weights) > 0
  os.makedirs(workdir, exist_ok=True)
  record = json.loads(json.dumps(dict(config=config.to_dict(), kernels=kernel_names, seed=seed)))
  tables = [os.path.join(workdir, name) for name in ("probe.json", "tasks.csv", "pairs.csv")]
  if all(map(os.path.exists, tables)) and json.loads(pathlib.Path(tables[0]).read_text()) == record:
    logging.info("Reading the tables of the same probe from %s", workdir)
    task_rows, pair_rows = (metrics.read_csv(path) for path in tables[1:])
  else:
    task_rows, pair_rows = compute(config, process, workdir, env, batch, covered, kernel_names,
                                   seed, max_runs)
    metrics.write_csv(tables[1], task_rows, TASK_COLUMNS)
    metrics.write_csv(tables[2], pair_rows, PAIR_COLUMNS)
    checkpoint.save_json(tables[0], record, indent=1)
  by_run = dict(zip(zip(batch.variants, batch.seeds.tolist()), covered.tolist()))
  rows = summary(task_rows, pair_rows, kernel_names,
                 covered_demos(process, by_run, kernel_names))
  metrics.write_csv(os.path.join(workdir, "summary.csv"), rows, list(rows[0]))
  figure(task_rows, kernel_names, env.num_tasks, os.path.join(workdir, "kernel_gram.png"))
  return rows


def main(argv) -> None:
  del argv
  f = flags.FLAGS
  rows = run(f.process, f.workdir, tuple(f.kernels), f.seed, f.max_runs)
  for r in rows:
    line = (f"{r['kernel']:>14}: covered share of posterior variance {r['covered_share_mean']:.3f}"
            f" [{r['covered_share_low']:.3f}, {r['covered_share_high']:.3f}]")
    if r["kernel"] != rows[0]["kernel"]:
      line += (f", minus {rows[0]['kernel']}'s {r['vs_first_mean']:+.3f} "
               f"[{r['vs_first_low']:+.3f}, {r['vs_first_high']:+.3f}]; correlations differ by "
               f"{r['mean_abs_corr_diff']:.2f} on average (max {r['max_abs_corr_diff']:.2f})")
    line += f"; negative correlations {r['negative_corr']:.0%}"
    if np.isfinite(r.get("demos", np.nan)):
      line += (f"; the process's amf/{r['kernel']} asked for {r['covered_demos']:.0f} of its "
               f"{r['demos']:.0f} demonstrations on covered tasks")
    print(line)
  logging.info("Tables and kernel_gram.png in %s", os.path.abspath(f.workdir))


def _flags() -> None:
  flags.DEFINE_string("process", None, "An AMF-NN process's workdir (config.json, and "
                      "checkpoints/pretrained where present).")
  flags.DEFINE_string("workdir", None, "Where the tables and figure go.")
  flags.DEFINE_list("kernels", [], "Two or more of the process's kernels, the first the "
                    "reference (default: all of them, in the process's order).")
  flags.DEFINE_integer("seed", 7, "The diagnostic's own randomness (query demonstrations, "
                       "stochastic kernels).")
  flags.DEFINE_integer("max_runs", 0, "Runs computed at once, to bound memory (0: all).")
  flags.mark_flags_as_required(["process", "workdir"])


if __name__ == "__main__":
  _flags()
  cli.run(main)
