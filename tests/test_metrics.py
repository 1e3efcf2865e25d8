"""Tests of CSV I/O, bootstrap CIs, AUC, tables and paired gaps."""
import numpy as np
import pytest
from scipy import stats

from amf import metrics


def _rows(methods=("amf", "uniform"), variants=("k=1", "k=2"), seeds=3, rounds=4, offset=None):
  """Synthetic metrics rows; `offset` maps a method to a value added to its success."""
  rng = np.random.default_rng(0)
  return [{"env": "toy", "method": m, "variant": v, "seed": s, "round": r, "num_demos": 5 * r,
           "return": float(rng.normal()),
           "success": r / rounds + (offset or {}).get(m, 0.0) + 0.01 * s}
          for m in methods for v in variants for s in range(seeds) for r in range(rounds)]


def test_bootstrap_ci_brackets_the_mean():
  values = np.random.default_rng(1).normal(size=10)
  mean, low, high = metrics.bootstrap_ci(values)
  assert mean == pytest.approx(values.mean())
  assert low < mean < high


def test_bootstrap_ci_shrinks_with_more_seeds():
  rng = np.random.default_rng(2)
  widths = []
  for n in (5, 200):
    _, low, high = metrics.bootstrap_ci(rng.normal(size=n))
    widths.append(high - low)
  assert widths[1] < widths[0] / 3


def test_bootstrap_ci_is_deterministic_given_seed():
  values = np.random.default_rng(3).normal(size=(7, 4))
  first = metrics.bootstrap_ci(values, seed=5)
  np.testing.assert_array_equal(first, metrics.bootstrap_ci(values, seed=5))
  assert not np.array_equal(first[1], metrics.bootstrap_ci(values, seed=6)[1])


def test_bootstrap_ci_over_seeds_keeps_trailing_axes():
  values = np.random.default_rng(4).normal(size=(6, 5))
  mean, low, high = metrics.bootstrap_ci(values)
  assert mean.shape == low.shape == high.shape == (5,)
  assert np.all((low <= mean) & (mean <= high))


def test_bootstrap_ci_of_one_seed_is_the_value():
  assert metrics.bootstrap_ci([0.7]) == (0.7, 0.7, 0.7)


def test_bootstrap_ci_of_no_seeds_raises():
  with pytest.raises(ValueError, match="at least one"):
    metrics.bootstrap_ci(np.zeros((0, 3)))


def test_auc_of_constant_is_the_constant():
  assert metrics.auc(np.full(6, 0.4)) == pytest.approx(0.4)


def test_auc_of_linear_ramp_is_its_mean():
  ramp = np.linspace(0.0, 1.0, 11)
  assert metrics.auc(ramp) == pytest.approx(0.5)
  np.testing.assert_allclose(metrics.auc(np.stack([ramp, 2 * ramp])), [0.5, 1.0])


def test_auc_of_one_round_is_its_value():
  assert metrics.auc([0.3]) == pytest.approx(0.3)


def test_csv_round_trip_preserves_values_and_types(tmp_path):
  rows = _rows()
  columns = list(rows[0])
  path = tmp_path / "sub" / "metrics.csv"
  metrics.write_csv(path, rows, columns)
  back = metrics.read_csv(path)
  assert back == rows
  assert [type(v) for v in back[5].values()] == [type(v) for v in rows[5].values()]


def test_csv_append_writes_header_once(tmp_path):
  rows = _rows()
  columns = list(rows[0])
  path = tmp_path / "metrics.csv"
  metrics.write_csv(path, rows[:4], columns, append=True)
  metrics.write_csv(path, rows[4:], columns, append=True)
  assert metrics.read_csv(path) == rows
  assert path.read_text().count("env,method") == 1


def test_csv_append_with_other_columns_raises(tmp_path):
  path = tmp_path / "metrics.csv"
  metrics.write_csv(path, [{"a": 1, "b": 2}], ["a", "b"])
  with pytest.raises(ValueError, match="has columns"):
    metrics.write_csv(path, [{"a": 1, "c": 2}], ["a", "c"], append=True)


def test_csv_row_missing_a_column_raises(tmp_path):
  with pytest.raises(ValueError, match="differ"):
    metrics.write_csv(tmp_path / "x.csv", [{"a": 1}], ["a", "b"])


def test_table_orders_by_seed_then_round():
  rows = _rows(methods=("amf",), variants=("k=1",), seeds=2, rounds=3)[::-1]
  values = metrics.table(rows, "success")[("amf", "k=1")]
  np.testing.assert_allclose(values, [[0, 1 / 3, 2 / 3], [0.01, 1 / 3 + 0.01, 2 / 3 + 0.01]])


def test_table_rejects_unknown_column_duplicates_and_ragged_runs():
  rows = _rows()
  with pytest.raises(ValueError, match="unknown column 'nope'"):
    metrics.table(rows, "nope")
  with pytest.raises(ValueError, match="several rows"):
    metrics.table(rows + rows[:1], "success")
  with pytest.raises(ValueError, match="unequal length"):
    metrics.table(rows[:-1], "success")


def test_summary_reports_final_and_auc_per_group():
  out = metrics.summary(_rows(seeds=1), "success")
  assert [(r["method"], r["variant"]) for r in out] == [
      ("amf", "k=1"), ("amf", "k=2"), ("uniform", "k=1"), ("uniform", "k=2")]
  assert out[0]["final_mean"] == pytest.approx(0.75)
  assert out[0]["auc_mean"] == pytest.approx(0.375)
  assert out[0]["n_seeds"] == 1


def test_paired_gap_of_identical_methods_is_zero():
  rows = _rows(methods=("amf",))
  rows += [{**r, "method": "copy"} for r in rows]
  for gap in metrics.paired_gap(rows, "success", "amf", "copy"):
    for key in ("final_mean", "final_low", "final_high", "auc_mean", "auc_low", "auc_high"):
      assert gap[key] == 0.0


def test_paired_gap_recovers_a_constant_offset():
  gaps = metrics.paired_gap(_rows(offset={"amf": 0.2}), "success", "amf", "uniform")
  assert [g["variant"] for g in gaps] == ["k=1", "k=2"]
  for g in gaps:
    assert g["final_mean"] == pytest.approx(0.2)
    assert g["auc_low"] == pytest.approx(0.2)
    assert g["auc_high"] == pytest.approx(0.2)


def test_paired_gap_without_shared_variants_raises():
  with pytest.raises(ValueError, match="no variant"):
    metrics.paired_gap(_rows(), "success", "amf", "missing")


def test_minimal_detectable_difference_has_the_stated_power():
  rng = np.random.default_rng(0)
  diffs = rng.normal(size=10)
  diffs = (diffs - diffs.mean()) / diffs.std(ddof=1)  # sd exactly 1
  mdd = metrics.minimal_detectable_difference(diffs, level=0.9, power=0.8)
  # A two-sided t-test at 10% on 10 seeds, with a true difference of `mdd` sds: its power is
  # the non-central t's mass beyond the critical value, which should be the stated 80%.
  crit = stats.t.ppf(0.95, 9)
  power = stats.nct.sf(crit, 9, mdd * np.sqrt(10)) + stats.nct.cdf(-crit, 9, mdd * np.sqrt(10))
  assert power == pytest.approx(0.8, abs=0.02)
  # Four times the seeds: under half the detectable difference (1/sqrt(4), and the t quantiles
  # shrink with the degrees of freedom).
  more = metrics.minimal_detectable_difference(np.tile(diffs, 4))
  assert 0.4 * mdd < more < 0.5 * mdd
  assert metrics.minimal_detectable_difference(diffs[:1]) == float("inf")


def test_paired_gap_reports_power_and_how_often_a_wins():
  rows = _rows(methods=("amf", "uniform"), seeds=4, offset={"amf": 0.2})
  rng = np.random.default_rng(3)
  rows = [{**r, "success": r["success"] + 0.1 * rng.normal()} for r in rows]
  for gap in metrics.paired_gap(rows, "success", "amf", "uniform"):
    assert 0 <= gap["final_p_better"] <= 1 and gap["auc_p_better"] > 0.5
    assert 0 < gap["auc_mdd"] < float("inf")


def test_batch_diversity_counts_distinct_tasks_per_batch():
  rows = []
  # amf: seed 0 asks (1, 1, 2, 3) then (4, 4, 4, 4); seed 1 (0, 1, 2, 3) twice. B = 4.
  for seed, batches in [(0, [(1, 1, 2, 3), (4, 4, 4, 4)]), (1, [(0, 1, 2, 3)] * 2)]:
    for rnd, batch in enumerate(batches):
      rows += [dict(method="amf", variant="v", seed=seed, round=rnd, task=t) for t in batch]
  # Off the finite set, tasks are told apart by their parameters.
  rows += [dict(method="cont", variant="v", seed=0, round=0, task=-1, c0=c, c1=0.5)
           for c in (0.1, 0.1, 0.2)]
  rows += [dict(method="one", variant="v", seed=0, round=r, task=r) for r in range(3)]
  for r in rows:
    r.setdefault("c0", 0.0)
    r.setdefault("c1", 0.0)
  table = {r["method"]: r for r in metrics.batch_diversity(rows)}
  assert set(table) == {"amf", "cont"}  # batches of one are left out
  amf = table["amf"]
  assert amf["batch_size"] == 4 and amf["n_seeds"] == 2
  assert amf["distinct_mean"] == pytest.approx(((3 + 1) / 2 + 4) / 2)
  assert amf["repeat_fraction"] == pytest.approx(0.5)
  assert table["cont"]["distinct_mean"] == 2 and table["cont"]["repeat_fraction"] == 1.0


def test_batch_agreement_compares_multisets_on_the_same_runs():
  def rows(method, batches, size=2):
    return [dict(method=method, variant="v", seed=seed, round=rnd, task=t, c0=0.0)
            for (seed, rnd), batch in batches.items() for t in batch[:size]]
  ref = {(0, 1): (1, 2), (0, 2): (3, 3), (1, 1): (0, 1), (1, 2): (2, 2)}
  # Seed 0 asks ref's batches in another order (equal as multisets); seed 1 differs in round
  # 1 and matches in round 2. A round the reference lacks is not counted.
  arm = {(0, 1): (2, 1), (0, 2): (3, 3), (1, 1): (0, 0), (1, 2): (2, 2), (1, 3): (4, 4)}
  table = rows("ref", ref) + rows("arm", arm)
  agreement = lambda rows_, method, variant="v": metrics.batch_agreement(
      metrics.batches(rows_), method, "ref", variant)
  assert agreement(table, "arm") == dict(first_equal=1, first_n=2, rounds_equal=3, rounds_n=4)
  # Batches of other sizes, or tasks off the finite set, cannot be equal: no comparison.
  assert agreement(table + rows("one", arm, 1), "one") is None
  off = [{**r, "task": -1} for r in rows("off", arm)]
  assert agreement(table + off, "off") is None
  assert agreement(table, "arm", "w") is None


def test_stability_measures_the_gain_over_round_zero_and_the_swing():
  # Seed 0 climbs steadily 0.5 -> 0.8; seed 1 swings 0.5 -> 1.0 -> 0.4 -> 0.9.
  curves = {0: [0.5, 0.6, 0.7, 0.8], 1: [0.5, 1.0, 0.4, 0.9]}
  rows = [dict(method="uniform", variant="v", seed=s, round=r, success=v)
          for s, curve in curves.items() for r, v in enumerate(curve)]
  per_task = [dict(r, task=0) for r in rows]
  (row,) = metrics.stability(rows, per_task, episodes=10)
  assert row["n_seeds"] == 2 and row["metric"] == "success"
  assert row["gain_mean"] == pytest.approx((0.3 + 0.4) / 2)
  assert row["gain_p_better"] == 1.0
  assert row["swing_mean"] == pytest.approx((0.1 + (0.5 + 0.6 + 0.5) / 3) / 2)
  assert row["swing_max"] == pytest.approx(0.6)
  assert row["swing_low"] <= row["swing_mean"] <= row["swing_high"]
  assert 0 < row["swing_floor"] < row["swing_mean"]


def test_evaluation_swing_is_the_swing_of_an_unchanged_policy_under_binomial_evaluation():
  # A fixed policy with per-task success 0.3, 0.8, 1.0, evaluated anew every round.
  rng = np.random.default_rng(0)
  probs, episodes, seeds, rounds = np.array([0.3, 0.8, 1.0]), 16, 400, 6
  rates = rng.binomial(episodes, probs, size=(seeds, rounds, 3)) / episodes
  per_task = [dict(method="m", variant="v", seed=s, round=r, task=t, success=rates[s, r, t])
              for s in range(seeds) for r in range(rounds) for t in range(3)]
  observed = np.abs(np.diff(rates.mean(-1), axis=1)).mean()
  floor = metrics.evaluation_swing(per_task, episodes)[("m", "v")]
  assert floor == pytest.approx(observed, rel=0.05)
  assert np.isnan(metrics.evaluation_swing(per_task, 1)[("m", "v")])  # no estimate


def test_seeds_for_is_the_fewest_seeds_whose_mdd_meets_the_target():
  diffs = np.random.default_rng(0).normal(0.1, 0.2, size=20)
  n = metrics.seeds_for(diffs, 0.05)
  # The MDD of m seeds at this spread, as minimal_detectable_difference computes it.
  mdd = lambda m: ((stats.t.ppf(0.95, m - 1) + stats.t.ppf(0.8, m - 1))
                   * diffs.std(ddof=1) / np.sqrt(m))
  assert mdd(20) == pytest.approx(metrics.minimal_detectable_difference(diffs))
  assert mdd(n) <= 0.05 < mdd(n - 1)
  assert metrics.seeds_for(diffs, 0.05, most=10) == 11  # not enough within 10
  assert metrics.seeds_for(np.zeros(5), 0.05) == 2
