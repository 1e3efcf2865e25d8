"""PNG figures of tidy metric rows: learning curves, gaps against a variant, allocations, bars.

Figures are built on `matplotlib.figure.Figure`, which renders PNGs with Agg and keeps no pyplot
state, so plotting is safe from scripts and tests alike. Every function writes one PNG and returns
its path. A method has the same colour in every figure; bands and error bars are bootstrap CIs of
the mean over seeds.
"""
import pathlib
import re
import zlib
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from amf import metrics

LEVEL = 0.9
METHOD_COLORS = {
    "amf": "#d62728",
    "uniform": "#7f7f7f",
    "round_robin": "#1f77b4",
    "rebalancing": "#2ca02c",
    "uncertainty": "#ff7f0e",
}
_FALLBACK_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79",
                    "#000000", "#8c6d31", "#843c39", "#7b4173")
_LABELS = {"success": "success rate", "return": "return", "round": "round",
           "num_demos": "demonstrations"}


def method_colors(methods: Sequence[str]) -> dict[str, str]:
  """Colours for the methods of one figure: fixed for known names, else hashed from the name.

  Hashing the name (not its position) keeps a method's colour the same across figures; a
  collision within one figure moves to the next free colour.
  """
  colors = {m: METHOD_COLORS[m] for m in methods if m in METHOD_COLORS}
  for method in methods:
    if method in colors:
      continue
    start = zlib.crc32(method.encode())
    options = [_FALLBACK_COLORS[(start + i) % len(_FALLBACK_COLORS)]
               for i in range(len(_FALLBACK_COLORS))]
    used = set(colors.values())
    colors[method] = next((c for c in options if c not in used), options[0])
  return colors


def _label(column: str) -> str:
  return _LABELS.get(column, column.replace("_", " "))


def _unique(items) -> list:
  return list(dict.fromkeys(items))


def _select(available: Sequence, wanted, what: str) -> list:
  """`wanted` in its order (all of `available` when None); unknown entries are an error."""
  if wanted is None:
    return list(available)
  unknown = [w for w in wanted if w not in available]
  if unknown:
    raise ValueError(f"unknown {what} {unknown}; the rows have {list(available)}")
  return list(wanted)


def _variant_axis(variants: Sequence) -> tuple[np.ndarray, str | None]:
  """Numeric x positions for variants such as `k=3` (and the name `k`), else evenly spaced."""
  matches = [re.fullmatch(r"(\w+)=(-?\d+(?:\.\d+)?)", str(v)) for v in variants]
  if all(matches) and len({m[1] for m in matches}) == 1:
    return np.array([float(m[2]) for m in matches]), matches[0][1]
  if all(isinstance(v, (int, float)) for v in variants):
    return np.array(variants, float), None
  return np.arange(len(variants), dtype=float), None


def _save(fig: Figure, path) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120, bbox_inches="tight")
  return path


def _panels(num: int, max_cols: int = 4, size=(4.0, 3.2), **kwargs):
  cols = min(num, max_cols)
  rows = -(-num // cols)
  fig = Figure(figsize=(size[0] * cols, size[1] * rows), layout="constrained")
  axes = fig.subplots(rows, cols, squeeze=False, **kwargs).ravel()
  for ax in axes[num:]:
    ax.set_visible(False)
  return fig, axes[:num]


def _legend(fig: Figure, axes):
  handles, labels = axes[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6),
             frameon=False)


def _yerr(mean, low, high) -> np.ndarray:
  # Clipped at 0: for (near-)constant values the bootstrap bounds can miss the mean by rounding,
  # and matplotlib rejects negative error bar lengths.
  return np.clip([mean - low, high - mean], 0, None)


def _seeds_note(n_seeds: Sequence[int]) -> str:
  lo, hi = min(n_seeds), max(n_seeds)
  seeds = f"{lo}" if lo == hi else f"{lo}-{hi}"
  return f"mean over {seeds} seeds, {LEVEL:.0%} bootstrap CI"


def curves(rows: Sequence[dict], path, value: str = "success", variants=None, x: str = "round",
           title: str | None = None) -> pathlib.Path:
  """One panel per variant: `value` against `x` (`round` or `num_demos`), one line per method."""
  metrics.check_columns(rows, (value, x, "variant"))
  grids = metrics.grids(rows, value)
  xs = metrics.table(rows, x) if x != "round" else None
  methods = _unique(m for m, _ in grids)
  variants = _select(_unique(v for _, v in grids), variants, "variants")
  colors = method_colors(methods)
  fig, axes = _panels(len(variants), sharey=True)
  for ax, variant in zip(axes, variants):
    for method in methods:
      grid = grids.get((method, variant))
      if grid is None:
        continue
      mean, low, high = metrics.bootstrap_ci(grid.values, LEVEL)
      pos = grid.rounds if xs is None else xs[method, variant].mean(0)
      ax.plot(pos, mean, "o-", ms=3, color=colors[method], label=method)
      ax.fill_between(pos, low, high, color=colors[method], alpha=0.2, lw=0)
    ax.set_title(str(variant))
    ax.set_xlabel(_label(x))
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(_label(value))
  if value == "success":
    axes[0].set_ylim(-0.03, 1.03)
  _legend(fig, axes)
  n_seeds = [len(g.seeds) for g in grids.values()]
  fig.suptitle(title or f"{_label(value)} per {_label(x)} ({_seeds_note(n_seeds)})")
  return _save(fig, path)


def gap_vs_variant(rows: Sequence[dict], path, value: str, method_a: str, method_b: str,
                   variant_order=None, xlabel: str | None = None,
                   title: str | None = None) -> pathlib.Path:
  """Seed-paired gap `method_a - method_b` of the final value and of the AUC against variant."""
  gaps = {g["variant"]: g for g in metrics.paired_gap(rows, value, method_a, method_b, LEVEL)}
  variants = _select(list(gaps), variant_order, "variants")
  pos, name = _variant_axis(variants)
  fig, axes = _panels(2, size=(4.8, 3.4), sharey=True)
  color = method_colors([method_a])[method_a]
  for ax, stat in zip(axes, ("final", "auc")):
    mean, low, high = (np.array([gaps[v][f"{stat}_{s}"] for v in variants])
                       for s in ("mean", "low", "high"))
    ax.axhline(0, color="k", lw=0.8)
    ax.fill_between(pos, low, high, color=color, alpha=0.2, lw=0)
    ax.errorbar(pos, mean, yerr=_yerr(mean, low, high), fmt="o-", ms=4, capsize=3,
                color=color)
    ax.set_xticks(pos, [str(v) if name is None else f"{p:g}" for v, p in zip(variants, pos)],
                  **({} if name else dict(rotation=30, ha="right")))  # names such as mixes
    ax.set_xlabel(xlabel or name or "variant")
    ax.set_title("final round" if stat == "final" else "area under the curve (mean over rounds)")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(f"{_label(value)}: {method_a} - {method_b}")
  n_seeds = [gaps[v]["n_seeds"] for v in variants]
  fig.suptitle(title or f"{method_a} - {method_b}, {_label(value)} ({_seeds_note(n_seeds)})")
  return _save(fig, path)


def _default_variants(variants: list, num: int = 4) -> list:
  """At most `num` variants spread evenly over their order, first and last included."""
  if len(variants) <= num:
    return variants
  return [variants[i] for i in np.linspace(0, len(variants) - 1, num).round().astype(int)]


def allocation_heatmaps(alloc_rows: Sequence[dict], path, num_tasks: int,
                        variants=None, title: str | None = None) -> pathlib.Path:
  """Task x round heatmaps of the demonstrations asked, summed over seeds.

  Columns are methods, rows are variants (by default at most four, spread over all of them).
  All panels share one colour scale so their counts compare.
  """
  metrics.check_columns(alloc_rows, ("method", "variant", "seed", "round", "task"))
  methods = _unique(r["method"] for r in alloc_rows)
  available = _unique(r["variant"] for r in alloc_rows)
  variants = (_default_variants(available) if variants is None
              else _select(available, variants, "variants"))
  num_rounds = max(r["round"] for r in alloc_rows)
  counts = np.zeros((len(variants), len(methods), num_tasks, num_rounds), int)
  for r in alloc_rows:
    if not 0 <= r["task"] < num_tasks or r["round"] < 1:
      raise ValueError(f"allocation row {r} has a task outside [0, {num_tasks}) or round < 1")
    if r["variant"] in variants:
      counts[variants.index(r["variant"]), methods.index(r["method"]), r["task"],
             r["round"] - 1] += 1
  fig = Figure(figsize=(2.2 + 2.6 * len(methods), 0.6 + 2.4 * len(variants)),
               layout="constrained")
  axes = fig.subplots(len(variants), len(methods), squeeze=False, sharex=True, sharey=True)
  extent = (0.5, num_rounds + 0.5, num_tasks - 0.5, -0.5)
  colors = method_colors(methods)
  for (i, j), ax in np.ndenumerate(axes):
    image = ax.imshow(counts[i, j], cmap="Blues", vmin=0, vmax=max(counts.max(), 1),
                      aspect="auto", interpolation="nearest", extent=extent)
    if i == 0:
      ax.set_title(methods[j], color=colors[methods[j]], fontweight="bold")
    if i == len(variants) - 1:
      ax.set_xlabel("round")
    if j == 0:
      ax.set_ylabel(f"{variants[i]}\ntask")
  fig.colorbar(image, ax=axes, label="demonstrations asked (sum over seeds)", shrink=0.8)
  num_seeds = len({r["seed"] for r in alloc_rows})
  fig.suptitle(title or f"Tasks asked for per round, summed over {num_seeds} seeds")
  return _save(fig, path)


def bars(rows: Sequence[dict], path, value: str, title: str | None = None) -> pathlib.Path:
  """Grouped bars of the final value and the AUC per variant (groups) and method (bars)."""
  stats = {(s["method"], s["variant"]): s for s in metrics.summary(rows, value, level=LEVEL)}
  methods = _unique(m for m, _ in stats)
  variants = _unique(v for _, v in stats)
  colors = method_colors(methods)
  width = 0.8 / len(methods)
  fig, axes = _panels(2, size=(max(4.0, 1.5 + 0.35 * len(variants) * len(methods)), 3.4),
                      sharey=True)
  for ax, stat in zip(axes, ("final", "auc")):
    for k, method in enumerate(methods):
      here = [i for i, v in enumerate(variants) if (method, v) in stats]
      mean, low, high = (np.array([stats[method, variants[i]][f"{stat}_{s}"] for i in here])
                         for s in ("mean", "low", "high"))
      ax.bar(np.array(here) + (k - (len(methods) - 1) / 2) * width, mean, width,
             yerr=_yerr(mean, low, high), capsize=2, color=colors[method], label=method)
    ax.set_xticks(range(len(variants)), [str(v) for v in variants])
    ax.set_title("final round" if stat == "final" else "area under the curve (mean over rounds)")
    ax.grid(axis="y", alpha=0.3)
  axes[0].set_ylabel(_label(value))
  _legend(fig, axes)
  n_seeds = [s["n_seeds"] for s in stats.values()]
  fig.suptitle(title or f"{_label(value)} ({_seeds_note(n_seeds)})")
  return _save(fig, path)


def data_efficiency(rows: Sequence[dict], path, base: int | None = None,
                    title: str | None = None) -> pathlib.Path:
  """Success and return against demonstrations per task (`uniform` curve), and each task's
  success against its own demonstrations (`per_task` curve, every other task with `base`)."""
  table = metrics.curve_summary(rows, LEVEL)
  fig, axes = _panels(3, size=(4.4, 3.4))
  color = METHOD_COLORS["uniform"]
  for ax, value in zip(axes[:2], ("success", "return")):
    own = sorted((r for r in table if r["curve"] == "uniform"), key=lambda r: r["n"])
    n, mean, low, high = (np.array([r[c] for r in own]) for c in
                          ("n", f"{value}_mean", f"{value}_low", f"{value}_high"))
    ax.fill_between(n, low, high, color=color, alpha=0.25, lw=0)
    ax.plot(n, mean, "o-", color="k", ms=4)
    ax.set(xscale="log", xlabel="demonstrations of every task", ylabel=_label(value),
           title=f"uniform allocation: {_label(value)}")
    ax.set_xticks(n, [f"{v:g}" for v in n])
    ax.minorticks_off()
  per_task = [r for r in table if r["curve"] == "per_task"]
  ax = axes[2]
  for task in _unique(r["task"] for r in per_task if r["task"] != "all"):
    own = sorted((r for r in per_task if r["task"] == task), key=lambda r: r["n"])
    ax.plot([r["n"] for r in own], [r["success_mean"] for r in own], "-", lw=1, alpha=0.6,
            label=f"task {task}")
  pooled = sorted((r for r in per_task if r["task"] == "all"), key=lambda r: r["n"])
  if pooled:
    n = np.array([r["n"] for r in pooled])
    ax.fill_between(n, [r["success_low"] for r in pooled], [r["success_high"] for r in pooled],
                    color=color, alpha=0.25, lw=0)
    ax.plot(n, [r["success_mean"] for r in pooled], "o-", color="k", ms=4, label="mean")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(n, [f"{v:g}" for v in n])
    ax.minorticks_off()
    ax.legend(fontsize=7, ncols=2)
  ax.set(xlabel="demonstrations of that task", ylabel="success rate on that task",
         title=f"one task (every other: {base} demos)" if base is not None else "one task")
  ax.set_visible(bool(per_task))
  for a in (axes[0], axes[2]):
    a.set_ylim(-0.03, 1.03)
  for a in axes:
    a.grid(alpha=0.3)
  n_seeds = [r["n_seeds"] for r in table]
  fig.suptitle(title or "BC data efficiency", fontsize=11)
  fig.text(0.5, -0.02, _seeds_note(n_seeds), ha="center", fontsize=8)
  return _save(fig, path)


def transfer(table: Sequence[dict], path, title: str | None = None,
             names: Sequence[str] = ()) -> pathlib.Path:
  """What one task's demonstrations give its neighbours: success with them (solid) and
  without (dashed) against the offset from that task, one panel per task parameter (`names`,
  else `c0, c1, ...`), one colour per source task, with CI bands."""
  params = sorted({r["param"] for r in table})
  fig, axes = _panels(len(params), size=(4.4, 3.4))
  for ax, d in zip(axes, params):
    for i, source in enumerate(sorted({r["source"] for r in table})):
      own = sorted((r for r in table if (r["param"], r["source"]) == (d, source)),
                   key=lambda r: r["unit_offset"])
      u, color = np.array([r["unit_offset"] for r in own]), f"C{i}"
      ax.fill_between(u, [r["success_low"] for r in own], [r["success_high"] for r in own],
                      color=color, alpha=0.25, lw=0)
      ax.plot(u, [r["success_mean"] for r in own], "o-", ms=4, color=color,
              label=f"with task {source}'s demos")
      ax.plot(u, [r["base_success_mean"] for r in own], "--", color=color,
              label="without")
    name = names[d] if d < len(names) else f"c{d}"
    ax.set(xlabel=f"offset of {name} (fraction of its range)", ylabel="success rate",
           title=f"moving {name} away from the demonstrated task", ylim=(-0.03, 1.03))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(title or "Transfer from one task's demonstrations", fontsize=11)
  fig.text(0.5, -0.02, _seeds_note([r["n_seeds"] for r in table]), ha="center", fontsize=8)
  return _save(fig, path)


def differences(entries: Sequence[dict], path, reference: str,
                title: str | None = None) -> pathlib.Path:
  """Horizontal bars of seed-paired differences against `reference` with their CIs: one panel
  per (metric, statistic) of `entries` (dicts of `label, method, metric, stat, mean, low,
  high`; a bar takes its method's colour)."""
  panels = _unique((e["metric"], e["stat"]) for e in entries)
  labels = _unique(e["label"] for e in entries)
  method = {e["label"]: e["method"] for e in entries}
  colors = method_colors(_unique(method.values()))
  fig, axes = _panels(len(panels), size=(3.6, 0.9 + 0.32 * len(labels)), sharey=True)
  for ax, (metric, stat) in zip(axes, panels):
    here = {e["label"]: e for e in entries if (e["metric"], e["stat"]) == (metric, stat)}
    pos = [i for i, label in enumerate(labels) if label in here]
    mean, low, high = (np.array([here[labels[i]][s] for i in pos]) for s in ("mean", "low", "high"))
    ax.barh(pos, mean, xerr=_yerr(mean, low, high), capsize=2,
            color=[colors[method[labels[i]]] for i in pos])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_title(f"{_label(metric)}, {'final round' if stat == 'final' else 'AUC'}")
    ax.grid(axis="x", alpha=0.3)
  axes[0].set_yticks(range(len(labels)), labels)
  axes[0].invert_yaxis()  # once: the panels share the axis
  fig.suptitle(title or f"seed-paired difference against {reference} ({LEVEL:.0%} bootstrap CI)")
  return _save(fig, path)


def task_histograms(alloc_rows: Sequence[dict], path, bounds: tuple[float, float],
                    region: tuple[float, float] | None = None, column: str = "c0",
                    grid=(), xlabel: str = "task parameter c0",
                    title: str | None = None) -> pathlib.Path:
  """Histograms of the tasks asked for in a continuous task space, one panel per method.

  Rows are variants; `bounds` is the parameter's range in the task space, `region` the target
  distribution's (shaded) and `grid` the finite set's values (ticks), so a reader sees whether
  a method asked inside mu, on the grid, or elsewhere.
  """
  metrics.check_columns(alloc_rows, ("method", "variant", "seed", "round", column))
  methods = _unique(r["method"] for r in alloc_rows)
  variants = _unique(r["variant"] for r in alloc_rows)
  bins = np.linspace(bounds[0], bounds[1], 49)
  fig = Figure(figsize=(1.2 + 2.6 * len(methods), 0.6 + 2.2 * len(variants)),
               layout="constrained")
  axes = fig.subplots(len(variants), len(methods), squeeze=False, sharex=True, sharey=True)
  colors = method_colors(methods)
  for (i, j), ax in np.ndenumerate(axes):
    values = [r[column] for r in alloc_rows
              if r["method"] == methods[j] and r["variant"] == variants[i]]
    if region is not None:
      ax.axvspan(*region, color="#ffd54f", alpha=0.4, lw=0)
    for g in grid:
      ax.axvline(g, color="#999999", lw=0.6, ls=":")
    ax.hist(values, bins=bins, color=colors[methods[j]])
    if i == 0:
      ax.set_title(methods[j], color=colors[methods[j]], fontweight="bold", fontsize=9)
    if i == len(variants) - 1:
      ax.set_xlabel(xlabel)
    if j == 0:
      ax.set_ylabel(f"{variants[i]}\ndemonstrations")
  num_seeds = len({r["seed"] for r in alloc_rows})
  fig.suptitle(title or f"Tasks asked for (all rounds, {num_seeds} seeds); shaded: the target "
               "region, dotted: the finite task set")
  return _save(fig, path)


def suggestion(result: dict, path, num_params: int) -> pathlib.Path:
  """`amf.suggest`'s answer: every candidate's alpha over the task parameters with the tasks
  asked for marked in order, and each target's posterior variance before and after."""
  cands, asked, targets = result["candidates"], result["asked"], result["targets"]
  c = np.array([x["task"] for x in cands])
  alpha = np.array([x["alpha"] for x in cands])
  t = np.array([x["task"] for x in targets])
  keep = np.array([x["weight"] > 0 for x in targets])
  picks = [(a["rank"], a["candidate"]) for a in asked]  # rows of `cands`, in AMF's order
  fig, (ax, bx) = _panels(2, size=(5.0, 3.6))
  amf_color = METHOD_COLORS["amf"]
  ids = np.array([x["id"] for x in cands])
  if np.all(ids >= 0):  # a finite set: one bar per task, the asked ones coloured and ranked
    ax.bar(ids, alpha, color="#7f7f7f")
    for rank, j in picks:
      ax.bar(ids[j], alpha[j], color=amf_color)
      ax.annotate(str(rank), (ids[j], alpha[j]), textcoords="offset points",
                  xytext=(0, 3), ha="center", color=amf_color, weight="bold")
    ax.set_xticks(ids, ["\n".join([str(i)] + [f"{v:.2f}" for v in c[k]]) for k, i in
                        enumerate(ids)], fontsize=7)
    ax.margins(y=0.12)
    ax.set_xlabel("task (id, parameters)")
    ax.set_ylabel("alpha (nats)")
    pos = np.flatnonzero(keep)
    bx.set_xlabel("target task")
  elif num_params == 1:
    order = np.argsort(c[:, 0])
    ax.plot(c[order, 0], alpha[order], "o-", color="#7f7f7f", ms=4, label="candidates")
    for rank, j in picks:
      ax.plot(c[j, 0], alpha[j], "*", color=amf_color, ms=14)
      ax.annotate(str(rank), (c[j, 0], alpha[j]), textcoords="offset points",
                  xytext=(6, 6), color=amf_color, weight="bold")
    ax.set_xlabel("task parameter 0")
    ax.set_ylabel("alpha (nats)")
    pos = t[keep, 0]
    bx.set_xlabel("target task parameter 0")
  else:
    sc = ax.scatter(c[:, 0], c[:, 1], c=alpha, cmap="viridis", s=40)
    fig.colorbar(sc, ax=ax, label="alpha (nats)")
    for rank, j in picks:
      ax.plot(*c[j, :2], "*", color=amf_color, ms=16, mec="white")
      ax.annotate(str(rank), c[j, :2], textcoords="offset points", xytext=(6, 6),
                  color=amf_color, weight="bold")
    ax.scatter(t[keep, 0], t[keep, 1], marker="x", color="black", s=20, label="targets")
    ax.set_xlabel("task parameter 0")
    ax.set_ylabel("task parameter 1")
    pos = np.arange(int(keep.sum()))
    bx.set_xlabel("target task")
  ax.set_title("AMF's score of each candidate; asked ones numbered in order")
  before = np.array([x["variance_before"] for x in targets])[keep]
  after = np.array([x["variance_after"] for x in targets])[keep]
  width = 0.4 * (np.min(np.diff(np.sort(pos))) if len(pos) > 1 else 1.0)
  bx.bar(pos - width / 2, before, width, color="#7f7f7f", label="before")
  bx.bar(pos + width / 2, after, width, color=amf_color, label="after the batch")
  bx.set_ylabel("posterior variance of the expert")
  bx.set_title("What the batch is expected to teach")
  bx.legend(frameon=False)
  return _save(fig, path)


def allocations(rows: Sequence[dict], path, env, continuous: bool, target_region=(),
                title: str | None = None, variants=None) -> pathlib.Path:
  """Which tasks each method asked for: task x round heatmaps on `env`'s finite task set; in a
  continuous task space, histograms of the first task parameter with mu's region shaded."""
  if continuous:
    region = tuple(target_region[0]) if target_region else None
    return task_histograms(rows, path, (env.task_space.low[0], env.task_space.high[0]), region,
                           grid=np.asarray(env.tasks[:, 0]), title=title)
  return allocation_heatmaps(rows, path, env.num_tasks, variants=variants, title=title)
