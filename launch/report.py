"""`REPORT.md`: every study of a workdir as tables and figures, rebuilt from its files alone.

  python -m launch.report --workdir=runs/ablations

Reads each study's `study.json` and its processes' `metrics.csv`, `allocations.csv`,
`config.json` and `launch.json` (nothing reruns). Per study and environment, an *arm* is one
method under one pre-training mix (the `variant` column) in one process: its final and AUC
success and return as mean [90% CI] (the seeded bootstrap of `summary.csv`) and IQM (rliable), and
against the study's reference arm the seed-paired difference [90% CI], the probability of
improvement (rliable: P(arm > reference) over seeds) and the minimal detectable difference
(`amf.metrics`); where the reference was evaluated at more demonstration counts (a smaller
batch), also the AUC difference at matched counts. Figures go to `<study>/figures/`.
"""
import datetime
import json
import os
import time
from typing import NamedTuple, Sequence

import ml_collections
import numpy as np
from absl import flags
from rliable import metrics as rl_metrics
from scipy import stats

from amf import cli, envs, metrics, plotting
from configs import studies as study_configs
from launch import studies

LEVEL = 0.9
STATS = ("final", "auc")
MDD_GOAL, SEEDS_MOST = 0.05, 40  # the plan's power goal and the most seeds a study may use


class Arm(NamedTuple):
  """One method under one mix in one process, and its per-seed final value, AUC and curve."""
  process: str
  method: str
  variant: str
  seeds: list
  values: dict  # metric -> {"final": (n,), "auc": (n,), "curve": (n, rounds)}
  demos: tuple = ()  # demonstrations at each round (seed 0's)

  @property
  def key(self) -> str:
    return f"{self.process} {self.method}" if self.process else self.method


def arms(rows_by_process: dict, metric_names) -> list[Arm]:
  """The arms of one environment's processes (`process tag -> metric rows`), in row order."""
  out = []
  for process, rows in rows_by_process.items():
    grids = {value: metrics.grids(rows, value) for value in metric_names}
    demos = metrics.grids(rows, "num_demos")
    for method, variant in grids[metric_names[0]]:
      values = {}
      for value in metric_names:
        grid = grids[value][method, variant]
        values[value] = {"final": grid.values[:, -1], "auc": metrics.auc(grid.values),
                         "curve": grid.values}
      out.append(Arm(process, method, variant, grids[metric_names[0]][method, variant].seeds,
                     values, tuple(int(n) for n in demos[method, variant].values[0])))
  return out


def reference_of(arm: Arm, others: list[Arm], reference: dict):
  """The arm with the study's reference coordinates in place of `arm`'s, or None (also for the
  reference itself)."""
  want = {"process": arm.process, "method": arm.method, "variant": arm.variant, **reference}
  for other in others:
    if other is not arm and all(getattr(other, k) == v for k, v in want.items()):
      return other
  return None


def interval_estimates(arm: Arm, metric_names) -> dict:
  """(metric, stat) -> (mean, low, high, iqm): the mean's CI by the seeded bootstrap that
  `summary.csv` uses (`amf.metrics.bootstrap_ci`, so both give an arm the same interval and a
  rebuilt report equals the first), and rliable's interquartile mean."""
  out = {}
  for m in metric_names:
    for s in STATS:
      values = arm.values[m][s]
      mean, low, high = metrics.bootstrap_ci(values, LEVEL)
      out[(m, s)] = (float(mean), float(low), float(high),
                     float(rl_metrics.aggregate_iqm(values[:, None])))
  return out


def paired(diffs) -> dict:
  """`metrics.paired_stats` of seed-paired differences, with the Student-t interval at the same
  level (`t_low`, `t_high`: with few seeds the percentile bootstrap can exclude 0 where it does
  not) and `tied`: every difference 0, so there is no spread and nothing to estimate."""
  diffs = np.asarray(diffs, float)
  n = len(diffs)
  half = (stats.t.ppf((1 + LEVEL) / 2, n - 1) * diffs.std(ddof=1) / np.sqrt(n) if n > 1
          else float("nan"))
  return {**metrics.paired_stats(diffs, LEVEL), "t_low": float(diffs.mean() - half),
          "t_high": float(diffs.mean() + half), "tied": bool(np.all(diffs == 0))}


def comparison(arm: Arm, ref: Arm, metric: str, stat: str) -> dict:
  """Seed-paired difference arm - reference (`paired`), with rliable's probability of
  improvement."""
  if arm.seeds != ref.seeds:
    raise ValueError(f"{arm.key} and {ref.key} ran different seeds ({arm.seeds} vs "
                     f"{ref.seeds}): no paired comparison")
  a, b = arm.values[metric][stat], ref.values[metric][stat]
  return {**paired(a - b),
          "poi": float(rl_metrics.probability_of_improvement(a[:, None], b[:, None]))}


def matched_comparison(arm: Arm, ref: Arm, metric: str):
  """Seed-paired AUC difference arm - reference over the demonstration counts of `arm`'s rounds,
  the reference's curve read at those counts, where the reference was evaluated at more of
  them (a smaller batch at the same budget): the AUC column then also compares grids, this
  does not. None where the counts are the same or not a subset of the reference's (seeds are
  paired as in `comparison`, which the table has checked)."""
  if arm.demos == ref.demos or not set(arm.demos) <= set(ref.demos):
    return None
  at = [ref.demos.index(n) for n in arm.demos]
  return paired(metrics.auc(arm.values[metric]["curve"])
                - metrics.auc(ref.values[metric]["curve"][:, at]))


def _ci(mean, low, high, sign: bool = False) -> str:
  f = "{:+.3f}" if sign else "{:.3f}"
  text = f"{f.format(mean)} [{f.format(low)}, {f.format(high)}]"
  excludes_zero = round(low, 3) > 0 or round(high, 3) < 0
  return f"**{text}**" if sign and excludes_zero else text


CEILING = "at the ceiling: no information"


def _delta(c: dict) -> str:
  """A paired difference's cell (`paired`): its bootstrap CI, bold where it excludes 0 and
  marked † where the t-interval does not; `CEILING` where every seed's difference is 0."""
  if c["tied"]:
    return CEILING
  text = _ci(c["mean"], c["low"], c["high"], sign=True)
  return text + " †" if text.startswith("**") and c["t_low"] <= 0 <= c["t_high"] else text


def markdown(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  """A markdown table's lines."""
  row = lambda cells: f"| {' | '.join(cells)} |"
  return [row(head), "|" + "---|" * len(head), *map(row, rows)]


def table(env_arms: list[Arm], study, metric: str, estimates: dict) -> list[str]:
  """The markdown table of one metric of one environment."""
  head = ("arm", "seeds", "final [90% CI]", "IQM", "Δ final vs ref. [90% bootstrap CI]",
          "P(>ref.)", "MDD", "AUC [90% CI]", "IQM", "Δ AUC vs ref. [90% bootstrap CI]",
          "P(>ref.)", "MDD")
  rows = []
  for arm in env_arms:
    ref = reference_of(arm, env_arms, study["reference"])
    label = _label(arm, env_arms)
    if arm.method in study["outside"]:
      label += " (outside ref.)"
    cells = [label, str(len(arm.seeds))]
    for stat in STATS:
      mean, low, high, iqm = estimates[arm.key, arm.variant][metric, stat]
      cells += [_ci(mean, low, high), f"{iqm:.3f}"]
      if ref is None:
        is_ref = all(getattr(arm, k) == v for k, v in study["reference"].items())
        cells += ["reference" if is_ref else "–", "", ""]
      else:
        c = comparison(arm, ref, metric, stat)
        cells += ([CEILING, "–", "–"] if c["tied"]
                  else [_delta(c), f"{c['poi']:.2f}", f"{c['mdd']:.3f}"])
    rows.append(cells)
  return markdown(head, rows)


def env_section(root: str, study: dict, env: str, spec: dict) -> list[str]:
  """The tables and figures of one environment of a study (or what is missing)."""
  tags = list(spec["processes"]) or [""]
  rows_by_process, allocs, missing, unfinished, config = {}, [], [], [], None
  for tag in tags:
    workdir = os.path.join(root, study["name"], env, tag)
    path = os.path.join(workdir, "metrics.csv")
    status = studies.launch_record(workdir).get("status")
    if status in ("running", "failed"):  # its tables, if any, are partial
      unfinished.append(os.path.join(env, tag) if tag else env)
      continue
    if not os.path.exists(path):
      missing.append(os.path.join(env, tag) if tag else env)
      continue
    # Shards of one process (`configs.studies.active_finetune`) read as that process.
    process = "" if spec.get("shards") else tag
    rows_by_process.setdefault(process, []).extend(metrics.read_csv(path))
    prefix = f"{process} " if process else ""
    allocs += [{**r, "method": prefix + r["method"]}
               for r in metrics.read_csv(os.path.join(workdir, "allocations.csv"))]
    with open(os.path.join(workdir, "config.json")) as f:
      config = ml_collections.ConfigDict(json.load(f))
  lines = [f"### {env}", ""]
  if missing:
    lines += [f"Not run yet: {', '.join(missing)}.", ""]
  if unfinished:
    lines += [f"Running or unfinished (its partial tables left out): {', '.join(unfinished)}.",
              ""]
  if not rows_by_process:
    return lines
  names = tuple(study["metrics"])
  env_arms = arms(rows_by_process, names)
  estimates = {(a.key, a.variant): interval_estimates(a, names) for a in env_arms}
  for metric in names:
    lines += [f"**{metric}** (reference: {_reference(study)})", ""]
    lines += table(env_arms, study, metric, estimates) + [""]
    lines += matched_line(env_arms, study, metric)
  lines += power_line(env_arms, study)
  lines += diversity_table(allocs)
  lines += agreement_line(env_arms, study, allocs)
  lines += _figures(root, study, env, env_arms, rows_by_process, allocs, config)
  return lines


def power_line(env_arms: list, study: dict) -> list[str]:
  """How many seeds each comparison with the reference needs for an MDD of at most `MDD_GOAL`
  in success AUC, from this run's paired spread (`metrics.seeds_for`)."""
  if "success" not in study["metrics"]:
    return []
  needs = []
  for arm in env_arms:
    ref = reference_of(arm, env_arms, study["reference"])
    if ref is not None:
      diffs = arm.values["success"]["auc"] - ref.values["success"]["auc"]
      n = metrics.seeds_for(diffs, MDD_GOAL, LEVEL, most=SEEDS_MOST)
      needs.append(f"{_label(arm, env_arms)} " + (
          "– (at the ceiling)" if paired(diffs)["tied"]
          else f"{n if n <= SEEDS_MOST else f'> {SEEDS_MOST}'}"))
  if not needs:
    return []
  return [f"Seeds for an MDD ≤ {MDD_GOAL} in success AUC against the reference (from these "
          f"seeds' paired spread; at most {SEEDS_MOST} a study): " + ", ".join(needs) + ".", ""]


def diversity_table(allocs) -> list[str]:
  """Distinct tasks per batch of each arm that asks for more than one task a round
  (`metrics.batch_diversity`); nothing when every batch holds one."""
  rows = metrics.batch_diversity(allocs, LEVEL) if allocs else []
  if not rows:
    return []
  head = ("arm", "variant", "seeds", "B", "distinct tasks per batch", "batches with a repeat")
  return ["**batch diversity** (distinct tasks per batch, mean over seeds [90% CI]; batches "
          "that ask for a task more than once)", "", *markdown(head, [
              (r["method"], r["variant"], str(r["n_seeds"]), str(r["batch_size"]),
               _ci(r["distinct_mean"], r["distinct_low"], r["distinct_high"]),
               f"{r['repeat_fraction']:.0%}") for r in rows]), ""]


def agreement_line(env_arms: list[Arm], study: dict, allocs) -> list[str]:
  """How often each arm asks for the same batch as its reference of the same strategy (e.g.
  AMF under another kernel) on the same runs (`metrics.batch_agreement`): whether the
  variant changes AMF's choices at all. Nothing when no arm has such a reference."""
  cells, by = [], metrics.batches(allocs) if allocs else {}
  for arm in env_arms:
    ref = reference_of(arm, env_arms, study["reference"])
    if ref is None or arm.method.split("/")[0] != ref.method.split("/")[0]:
      continue
    a = metrics.batch_agreement(by, arm.key, ref.key, arm.variant)
    if a:
      cells.append(f"{_label(arm, env_arms)} {a['first_equal']}/{a['first_n']} in round 1, "
                   f"{a['rounds_equal']}/{a['rounds_n']} in all")
  if not cells:
    return []
  return ["**same batch as the reference** (runs on which the arm asked for the reference's "
          "batch, as a multiset of tasks; round 1 starts both from the same pre-trained run, "
          "later rounds also differ by earlier data): " + ", ".join(cells) + ".", ""]


def matched_line(env_arms: list[Arm], study: dict, metric: str) -> list[str]:
  """The AUC differences at matched demonstration counts (`matched_comparison`) of the arms
  whose reference was evaluated at more counts; nothing when no arm's was."""
  cells = []
  for arm in env_arms:
    ref = reference_of(arm, env_arms, study["reference"])
    c = ref and matched_comparison(arm, ref, metric)
    if c:
      cells.append(f"{_label(arm, env_arms)} {_delta(c)}"
                   + ("" if c["tied"] else f" (MDD {c['mdd']:.3f})"))
  if not cells:
    return []
  return [f"Δ {metric} AUC vs ref. at matched demonstration counts (both curves over the "
          "counts of the arm's own rounds, so the reference's finer grid of a smaller batch "
          "is no part of the difference; the AUC column above includes it): "
          + ", ".join(cells) + ".", ""]


def _label(arm: Arm, env_arms: list[Arm]) -> str:
  """The arm's name in a table, with its mix where the environment's arms differ in mix."""
  return arm.key + (f" · {arm.variant}" if len({a.variant for a in env_arms}) > 1 else "")


def _reference(study: dict) -> str:
  return ", ".join(f"{k} {v}" for k, v in study["reference"].items())


def _figures(root, study, env, env_arms, rows_by_process, allocs, config) -> list[str]:
  folder = os.path.join(root, study["name"], "figures")
  rel = lambda path: os.path.relpath(path, root)
  merged = [{**r, "method": f"{tag} {r['method']}" if tag else r["method"]}
            for tag, rows in rows_by_process.items() for r in rows]
  out = []
  for metric in study["metrics"]:
    path = plotting.curves(merged, os.path.join(folder, f"{env}_curves_{metric}.png"), metric,
                           x="num_demos", title=f"{study['name']} on {env}: {metric} "
                           f"(mean over seeds, {LEVEL:.0%} bootstrap band)")
    out.append(f"![{env} {metric} curves]({rel(path)})")
  entries = []
  for arm in env_arms:
    ref = reference_of(arm, env_arms, study["reference"])
    if ref is not None:
      entries += [{"label": _label(arm, env_arms), "method": arm.method, "metric": m, "stat": s,
                   **comparison(arm, ref, m, s)}
                  for m in study["metrics"] for s in STATS]
  if entries:
    path = plotting.differences(entries, os.path.join(folder, f"{env}_differences.png"),
                                _reference(study))
    out.append(f"![{env} paired differences]({rel(path)})")
  a, b = study["gap"] or (None, None)
  variants = list(dict.fromkeys(arm.variant for arm in env_arms))
  if (a and len(rows_by_process) == 1 and len(variants) > 1
      and {a, b} <= {x.method for x in env_arms}):
    path = plotting.gap_vs_variant(merged, os.path.join(folder, f"{env}_gap.png"), "success", a,
                                   b, variant_order=variants, xlabel="pre-training mix")
    out.append(f"![{env} {a} - {b} against the mix]({rel(path)})")
  if allocs and config is not None:
    # Heatmaps over a finite task set; histograms over a continuous one (the experiment's own).
    path = os.path.join(folder, f"{env}_allocations.png")
    plotting.allocations(allocs, path, envs.make(config.env, **config.env_kwargs),
                         config.task_space == "continuous", config.get("target_region", ()),
                         f"Tasks asked for on {env}")
    out.append(f"![{env} allocations]({rel(path)})")
  return out + [""]


def interval(record: dict):
  """`(start, end)` of a finished process in seconds (its `launch.json`): from `started` (a
  resumed process's first attempt, so the gaps between attempts count) or else its wall
  `seconds` before `finished`; None where `finished` is not recorded."""
  if "finished" not in record:
    return None
  end = datetime.datetime.fromisoformat(record["finished"])
  start = (datetime.datetime.fromisoformat(record["started"]) if "started" in record
           else end - datetime.timedelta(seconds=record["seconds"]))
  epoch = datetime.datetime(2000, 1, 1)  # the records' local times, compared as they are
  return (start - epoch).total_seconds(), (end - epoch).total_seconds()


def span(intervals) -> float:
  """Seconds during which at least one of `intervals` ran: the length of their union, which
  unlike the sum of their lengths counts processes that ran side by side once."""
  total, reached = 0.0, -float("inf")
  for start, end in sorted(intervals):
    total += max(0.0, end - max(start, reached))
    reached = max(reached, end)
  return total


def times(root: str, study: dict) -> dict:
  """Processes, finished ones with the study's current settings, finished ones with older
  settings (stale: the launcher runs them again, `studies.holds`), and of the current ones
  the summed wall and CPU seconds and their `(start, end)` intervals (their `launch.json`
  files; CPU time and intervals where they were recorded)."""
  out = {"processes": 0, "done": 0, "stale": 0, "seconds": 0.0, "cpu_seconds": 0.0, "cpu_of": 0,
         "intervals": []}
  for process in studies.processes(ml_collections.ConfigDict(study)):
    out["processes"] += 1
    workdir = os.path.join(root, process.path)
    record = studies.launch_record(workdir)
    if record.get("status") != "done":
      continue
    if studies.holds(workdir, json.loads(studies.experiment_config(process).to_json())):
      out["done"] += 1
      out["seconds"] += record["seconds"]
      if interval(record) is not None:
        out["intervals"].append(interval(record))
      if "cpu_seconds" in record:
        out["cpu_seconds"] += record["cpu_seconds"]
        out["cpu_of"] += 1
    else:
      out["stale"] += 1
  return out


def build(root: str) -> str:
  """The report's markdown for every study found under `root`."""
  found = [n for n in study_configs.STUDIES
           if os.path.exists(os.path.join(root, n, "study.json"))]
  if not found:
    raise ValueError(f"No study under {root}: run python -m launch.reproduce "
                     "--figures=ablations first.")
  loaded = {n: studies.read(root, n) for n in found}
  scales = sorted({s["scale"] for s in loaded.values()})
  lines = ["# Ablation studies", "",
           f"Scale: {', '.join(scales)}. Built {time.strftime('%Y-%m-%d %H:%M')} from the "
           f"tables under this folder (`python -m launch.report --workdir={root}` rebuilds it). "
           f"Statistics over seeds at {LEVEL:.0%}: mean [bootstrap CI] (the percentile "
           "bootstrap of `amf.metrics.bootstrap_ci`, 2000 resamples, seeded: the intervals of "
           "`summary.csv`) and IQM (rliable); Δ: the seed-paired difference against the "
           "study's reference arm [the same bootstrap over the per-seed differences], **bold** "
           "where that CI excludes 0, and marked † where the Student-t interval of the same "
           "differences at the same level does not (with few seeds the bootstrap is the "
           f"narrower); \"{CEILING}\" where every seed's difference is 0 (both arms equal on "
           "every seed, as at a success of 1: no spread, so no CI, P or MDD). P(>ref.): "
           "rliable's probability of improvement; MDD: the minimal detectable difference of "
           "that comparison (80% power). AUC is the mean level over the budget.", "",
           "Done: finished with the study's current settings (its times are theirs); "
           "stale: finished with older ones (e.g. fewer seeds), shown below until the "
           "launcher reruns it. Wall time: the done processes' wall times summed, which "
           "counts processes that ran side by side twice; elapsed: the time during which at "
           "least one of them ran (the union of their [start, finish] intervals in "
           "`launch.json`, a resumed process's from its first attempt). CPU time: user + "
           "system time of the done processes that recorded it (of n), which unlike wall "
           "time does not grow when processes share the cores.", ""]
  rows = {name: times(root, study) for name, study in loaded.items()}
  rows["total"] = {k: sum((t[k] for t in rows.values()), type(v)())  # 0, 0.0 or []
                   for k, v in next(iter(rows.values())).items()}
  # The total's intervals are every study's: their union spans.
  lines += markdown(("study", "processes", "done", "stale", "wall time (summed)", "elapsed",
                     "CPU time (of n)"), [
      (name if name == "total" else f"[{name}](#{name})", str(t["processes"]), str(t["done"]),
       str(t["stale"]), f"{t['seconds'] / 60:.1f} min",
       f"{span(t['intervals']) / 60:.1f} min" if t["intervals"] else "–",
       f"{t['cpu_seconds'] / 60:.1f} min ({t['cpu_of']})" if t["cpu_of"] else "–")
      for name, t in rows.items()]) + [""]
  missing = [n for n in study_configs.STUDIES if n not in found]
  if missing:
    lines += ["Not run in this workdir: " + ", ".join(f"`{n}`" for n in missing) + ".", ""]
  for name, study in loaded.items():
    lines += [f"## {name}", "", study["question"], ""]
    for env, spec in study["envs"].items():
      lines += env_section(root, study, env, spec)
  return "\n".join(lines)


def write(root: str) -> str:
  """Writes `<root>/REPORT.md` and returns its path."""
  path = os.path.join(root, "REPORT.md")
  text = build(root)
  with open(path, "w") as f:
    f.write(text)
  return path


def main(argv):
  del argv
  print(write(flags.FLAGS.workdir))


if __name__ == "__main__":
  flags.DEFINE_string("workdir", "runs/reproduce", "The launcher's workdir.")
  cli.run(main)
