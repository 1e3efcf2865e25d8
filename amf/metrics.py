"""Tidy metric tables: CSV I/O, bootstrap confidence intervals over seeds, AUC, summaries, gaps.

Rows are dicts, one per method x variant x seed x round (`metrics.csv`, docs/design.md §10); all
statistics are over seeds, the unit of independent replication.
"""
import csv
import pathlib
import re
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats

Row = dict
GROUP = ("method", "variant")


def write_csv(path, rows: Sequence[Row], columns: Sequence[str], append: bool = False):
  """Writes `rows` (exactly `columns` each) to `path`; with `append`, the header only once.

  Appending checks the existing header, so a resumed run cannot misalign columns.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  columns = list(columns)
  exists = append and path.exists() and path.stat().st_size > 0
  if exists:
    with path.open(newline="") as f:
      header = next(csv.reader(f))
    if header != columns:
      raise ValueError(f"{path} has columns {header}, not {columns}")
  for row in rows:
    if row.keys() != set(columns):
      raise ValueError(f"row columns {sorted(row)} differ from {sorted(columns)}")
  with path.open("a" if append else "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    if not exists:
      writer.writeheader()
    writer.writerows(rows)


def read_csv(path) -> list[Row]:
  """Reads rows written by `write_csv`, parsing numbers back to int or float."""
  with pathlib.Path(path).open(newline="") as f:
    return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _parse(text: str):
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text


def bootstrap_ci(values, level: float = 0.9, num_resamples: int = 2000, seed: int = 0):
  """Percentile-bootstrap CI of the mean over axis 0 (seeds).

  Args:
    values: shape `(n, ...)`; trailing axes (e.g. rounds) get their own intervals.
    level: coverage of the interval.
    num_resamples: bootstrap resamples.
    seed: makes the interval deterministic.

  Returns:
    `(mean, low, high)`, each of shape `values.shape[1:]`.
  """
  values = np.asarray(values, float)
  if values.ndim == 0 or values.shape[0] == 0:
    raise ValueError(f"bootstrap_ci needs at least one value along axis 0, got {values.shape}")
  n = values.shape[0]
  mean = values.mean(0)
  if n == 1:
    return mean, mean, mean
  # Resampling n of n with replacement is a multinomial draw of per-seed counts; a matmul with
  # the counts then gives every resample's mean without materialising (resamples, n, ...).
  counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=num_resamples)
  means = (counts @ values.reshape(n, -1) / n).reshape(num_resamples, *values.shape[1:])
  tail = (1 - level) / 2
  low, high = np.quantile(means, [tail, 1 - tail], axis=0)
  return mean, low, high


def auc(curve) -> np.ndarray:
  """Trapezoid area under a metric over rounds 0..R divided by R, i.e. its mean level.

  Rounds are the last axis; a single round gives its value.
  """
  curve = np.asarray(curve, float)
  if curve.shape[-1] == 1:
    return curve[..., 0]
  area = curve.sum(-1) - (curve[..., 0] + curve[..., -1]) / 2
  return area / (curve.shape[-1] - 1)


class Grid(NamedTuple):
  """One group's values with the seeds and rounds its rows and columns stand for."""
  seeds: list
  rounds: list
  values: np.ndarray  # (len(seeds), len(rounds))


def grids(rows: Sequence[Row], value: str, by: Sequence[str] = GROUP) -> dict[tuple, Grid]:
  """Groups rows by the columns `by` into seed x round grids, in order of first appearance."""
  check_columns(rows, (value, "seed", "round", *by))
  cells = [*by, "seed", "round"]
  frame = pd.DataFrame(rows, columns=[*cells, value])
  repeated = frame[frame.duplicated(cells)]
  if len(repeated):
    row = repeated.iloc[0]
    raise ValueError(
        f"several rows for {dict(row[list(by)])}, seed {row['seed']}, round {row['round']}: "
        "filter the rows (e.g. to one env) or add their column to `by`")
  out = {}
  for key, group in frame.groupby(list(by), sort=False, dropna=False):
    key = tuple(k.item() if isinstance(k, np.generic) else k for k in key)  # the rows' types
    grid = group.pivot(index="seed", columns="round", values=value).sort_index().sort_index(axis=1)
    if grid.isna().any(axis=None):
      missing = grid.stack(future_stack=True)
      raise ValueError(f"group {key} lacks (seed, round) {missing[missing.isna()].index[:5].tolist()}"
                       ": runs of unequal length")
    out[key] = Grid(grid.index.tolist(), grid.columns.tolist(), grid.to_numpy(float))
  return out


def table(rows: Sequence[Row], value: str, by: Sequence[str] = GROUP) -> dict[tuple, np.ndarray]:
  """Maps each group (a tuple of the `by` columns) to its `(n_seeds, n_rounds)` array of `value`.

  Seeds and rounds are sorted; a group whose seeds do not all have the same rounds is an error.
  """
  return {key: grid.values for key, grid in grids(rows, value, by).items()}


def check_columns(rows: Sequence[Row], columns: Sequence[str]):
  """Raises a ValueError naming the first of `columns` that `rows` lack."""
  if not rows:
    raise ValueError("no rows")
  for column in columns:
    if column not in rows[0]:
      raise ValueError(f"unknown column {column!r}; the rows have {sorted(rows[0])}")


def interval(prefix: str, values, level: float) -> Row:
  mean, low, high = bootstrap_ci(values, level)
  return {f"{prefix}_mean": float(mean), f"{prefix}_low": float(low),
          f"{prefix}_high": float(high)}


def summary(rows: Sequence[Row], value: str, by: Sequence[str] = GROUP,
            level: float = 0.9) -> list[Row]:
  """Per group: the final-round value and the AUC, each as a mean with a bootstrap CI over seeds."""
  out = []
  for key, values in table(rows, value, by).items():
    out.append({**dict(zip(by, key)), "metric": value, "n_seeds": len(values),
                **interval("final", values[:, -1], level), **interval("auc", auc(values), level)})
  return out


def minimal_detectable_difference(diffs, level: float = 0.9, power: float = 0.8) -> float:
  """The smallest true mean difference a seed-paired comparison of these seeds would detect.

  With `n` paired differences of standard deviation `sd`, a difference of
  `(t_{(1+level)/2} + t_power) * sd / sqrt(n)` (Student-t quantiles, `n - 1` degrees of
  freedom) makes the `level` confidence interval of the mean difference exclude zero with
  probability `power`. It is how finely a study can tell two methods apart; differences below
  it are not evidence of no difference.
  """
  diffs = np.asarray(diffs, float)
  n = diffs.shape[0]
  if n < 2:
    return float("inf")
  quantiles = stats.t.ppf((1 + level) / 2, n - 1) + stats.t.ppf(power, n - 1)
  return float(quantiles * diffs.std(ddof=1) / np.sqrt(n))


def seeds_for(diffs, target: float, level: float = 0.9, power: float = 0.8,
              most: int = 1000) -> int:
  """The fewest seeds whose `minimal_detectable_difference` is at most `target`, at the spread
  of these paired differences (a pilot's); `most` + 1 when even `most` seeds are not enough."""
  sd = np.asarray(diffs, float).std(ddof=1)
  for n in range(2, most + 1):
    if (stats.t.ppf((1 + level) / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / np.sqrt(n) \
        <= target:
      return n
  return most + 1


def paired_stats(diffs, level: float = 0.9) -> dict:
  """Seed-paired differences `a - b` (one per seed) as `mean`, `low`, `high` (bootstrap CI),
  `mdd` (the minimal detectable difference) and `p_better` (the fraction of seeds on which
  `a` beats `b`, ties count a half)."""
  diffs = np.asarray(diffs, float)
  mean, low, high = bootstrap_ci(diffs, level)
  return {"mean": float(mean), "low": float(low), "high": float(high),
          "mdd": minimal_detectable_difference(diffs, level),
          "p_better": float(np.mean((diffs > 0) + 0.5 * (diffs == 0)))}


def paired_gap(rows: Sequence[Row], value: str, method_a: str, method_b: str,
               level: float = 0.9) -> list[Row]:
  """Per variant run with both methods: seed-paired difference a - b of final value and of AUC.

  Pairing by seed removes the variance the two methods share (same pre-trained policy, same
  evaluation tasks), so the intervals are tighter than those of two independent means. Each
  statistic also gets the comparison's minimal detectable difference (`*_mdd`) and the
  fraction of seeds on which `a` beats `b` (`*_p_better`, ties count a half).
  """
  by_group = grids(rows, value, ("method", "variant"))
  out = []
  for (method, variant), a in by_group.items():
    b = by_group.get((method_b, variant))
    if method != method_a or b is None:
      continue
    if a.seeds != b.seeds or a.rounds != b.rounds:
      raise ValueError(f"variant {variant!r}: {method_a} and {method_b} ran different seeds or "
                       f"rounds ({a.seeds} x {a.rounds} vs {b.seeds} x {b.rounds})")
    diff = a.values - b.values
    row = {"variant": variant, "method_a": method_a, "method_b": method_b, "metric": value,
           "n_seeds": len(a.seeds)}
    for stat, d in (("final", diff[:, -1]), ("auc", auc(diff))):
      row.update({f"{stat}_{k}": v for k, v in paired_stats(d, level).items()})
    out.append(row)
  if not out:
    raise ValueError(f"no variant has rows of both {method_a!r} and {method_b!r}")
  return out


def stability(rows: Sequence[Row], per_task: Sequence[Row], episodes: int,
              by: Sequence[str] = GROUP, level: float = 0.9) -> list[Row]:
  """Per group: does fine-tuning improve on round 0's success, and how much does a seed swing?

  `gain_*`: the seed-paired final − round-0 difference (`paired_stats`: mean, CI, MDD);
  `swing_*`: each seed's mean |change| between consecutive rounds (mean and CI over seeds);
  `swing_max`: the largest such change of any seed; `swing_floor`: the swing an unchanged
  policy would show from evaluation sampling alone (`evaluation_swing`, from `per_task`'s
  success rates over `episodes` episodes per task).
  """
  floors = evaluation_swing(per_task, episodes, by)
  out = []
  for key, values in table(rows, "success", by).items():
    steps = np.abs(np.diff(values, axis=1))
    row = {**dict(zip(by, key)), "metric": "success", "n_seeds": len(values)}
    row.update({f"gain_{k}": v for k, v in paired_stats(values[:, -1] - values[:, 0],
                                                        level).items()})
    row.update(interval("swing", steps.mean(1) if steps.size else np.zeros(len(values)), level))
    row["swing_max"] = float(steps.max()) if steps.size else 0.0
    row["swing_floor"] = floors[key]
    out.append(row)
  return out


def evaluation_swing(per_task: Sequence[Row], episodes: int,
                     by: Sequence[str] = GROUP) -> dict[tuple, float]:
  """Per group: the expected |change| of a round's success between consecutive rounds that
  binomial evaluation noise alone gives, averaged over seeds and round pairs.

  A round's success is the mean over T tasks of rates over `episodes` episodes each, so its
  sampling variance is sum_t p_t (1 - p_t) / (episodes - 1) / T^2 (unbiased in the estimated
  p_t); the difference of two independent rounds is normal with the sum of their variances,
  whose mean absolute value is sqrt(2 v / pi). NaN with one episode per task (no estimate).
  """
  by_task = table(per_task, "success", tuple(by) + ("task",))
  groups: dict[tuple, list] = {}
  for key, p in by_task.items():
    groups.setdefault(key[:-1], []).append(p)
  floors = {}
  for key, ps in groups.items():
    p = np.stack(ps)  # (tasks, seeds, rounds)
    var = (p * (1 - p)).sum(0) / (episodes - 1) / len(ps) ** 2 if episodes > 1 else np.nan
    steps = np.sqrt(2 * (var[:, 1:] + var[:, :-1]) / np.pi) if episodes > 1 else np.nan
    floors[key] = float(np.mean(steps)) if np.size(steps) else 0.0
  return floors


def curve_summary(rows: Sequence[Row], level: float = 0.9) -> list[Row]:
  """Data-efficiency rows (`curve, task, n, seed, success, return`) as means with CIs over seeds.

  Per (curve, n): each seed's tasks are averaged first (`task = all`); the `per_task` curve,
  whose rows each hold one task's own curve, also gets a row per task.
  """
  check_columns(rows, ("curve", "task", "n", "seed", "success", "return"))
  groups: dict[tuple, dict] = {}
  for r in rows:
    for task in ("all", r["task"]) if r["curve"] == "per_task" else ("all",):
      groups.setdefault((r["curve"], task, r["n"]), {}).setdefault(r["seed"], []).append(r)
  out = []
  for (curve, task, n), by_seed in groups.items():
    stats = {}
    for value in ("success", "return"):
      per_seed = [np.mean([r[value] for r in seed_rows]) for seed_rows in by_seed.values()]
      stats.update(interval(value, per_seed, level))
    out.append(dict(curve=curve, task=task, n=n, n_seeds=len(by_seed), **stats))
  return out


def batches(alloc_rows: Sequence[Row]) -> dict:
  """The tasks of each batch `(method, variant, seed, round)` in `allocations.csv` rows, in
  row order; a task is its finite-set id, or its parameters (`c0`, `c1`, ...) off the set."""
  check_columns(alloc_rows, ("method", "variant", "seed", "round", "task"))
  params = sorted(k for k in (alloc_rows[0] if alloc_rows else {}) if re.fullmatch(r"c\d+", k))
  out: dict[tuple, list] = {}
  for r in alloc_rows:
    task = r["task"] if int(r["task"]) >= 0 else tuple(round(float(r[k]), 6) for k in params)
    out.setdefault((r["method"], r["variant"], r["seed"], r["round"]), []).append(task)
  return out


def batch_agreement(by: dict, method: str, reference: str, variant: str) -> Optional[Row]:
  """How often `method` asks for the same batch (as a multiset of tasks) as `reference` on the
  same run (variant, seed), from the batches `by` (`batches`): in round 1, where both start
  from the same pre-trained run and differ only by their own setting, and in every round
  (later rounds also differ by the data of earlier ones). None where the two cannot ask alike
  by construction: batches of other sizes, or tasks off the finite set (proposals of their
  own, e.g. grids of other sizes); and when either has no batches."""
  same = {}
  for (m, v, seed, round_), tasks in by.items():
    ref = by.get((reference, variant, seed, round_))
    if ((m, v) != (method, variant) or ref is None or len(ref) != len(tasks)
        or any(isinstance(t, tuple) for t in tasks + ref)):
      continue
    same[seed, int(round_)] = sorted(map(str, tasks)) == sorted(map(str, ref))
  if not same:
    return None
  firsts = [equal for (_, round_), equal in same.items() if round_ == 1]
  return dict(first_equal=sum(firsts), first_n=len(firsts), rounds_equal=sum(same.values()),
              rounds_n=len(same))


def batch_diversity(alloc_rows: Sequence[Row], level: float = 0.9) -> list[Row]:
  """Distinct tasks per batch of each (method, variant), from `allocations.csv` rows
  (`batches`).

  Per arm: the mean number of distinct tasks per batch (CI over seeds of each seed's mean),
  the batch size, and the fraction of batches that ask for some task more than once. Arms
  with batches of one are left out.
  """
  batches_ = batches(alloc_rows)
  arms: dict[tuple, dict] = {}
  for (method, variant, seed, _), tasks in batches_.items():
    arms.setdefault((method, variant), {}).setdefault(seed, []).append(
        (len(set(tasks)), len(tasks)))
  out = []
  for (method, variant), by_seed in arms.items():
    size = max(b for seeds in by_seed.values() for _, b in seeds)
    if size < 2:
      continue
    every = [d for seeds in by_seed.values() for d, _ in seeds]
    out.append(dict(method=method, variant=variant, n_seeds=len(by_seed), batch_size=size,
                    **interval("distinct", [np.mean([d for d, _ in seeds])
                                            for seeds in by_seed.values()], level),
                    repeat_fraction=float(np.mean([d < size for d in every]))))
  return out
