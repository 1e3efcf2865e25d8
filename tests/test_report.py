"""`REPORT.md` from a workdir's tables (`launch/report.py`), on made-up tables of a study with
two processes: arms, the reference of each, paired differences, figures, missing processes."""
import json
import zlib

import numpy as np
import pytest

from amf import metrics
from configs.studies import active_finetune, integrator_gp, study
from experiments import common
from launch import report, studies

SEEDS, ROUNDS = 6, 3


def _rows(method, variant, level, rounds=ROUNDS):
  """Success climbing to `level` (+ seed noise); return = 10 x success."""
  rng = np.random.default_rng(zlib.crc32(f"{method}|{variant}".encode()))  # same every process
  rows = []
  for seed in range(SEEDS):
    noise = 0.02 * rng.standard_normal()
    for r in range(rounds + 1):
      success = float(np.clip(level * r / rounds + noise, 0, 1))
      rows.append(dict(env="integrator", method=method, variant=variant, seed=seed, round=r,
                       num_demos=r * 8 // rounds, success=success, **{"return": 10 * success}))
  return rows


def _write(workdir, rows):
  metrics.write_csv(workdir / "metrics.csv", rows, common.METRIC_COLUMNS)
  allocs = [dict(env="integrator", method=r["method"], variant=r["variant"], seed=r["seed"],
                 round=r["round"], task=r["seed"] % 4) for r in rows if r["round"] > 0]
  metrics.write_csv(workdir / "allocations.csv", allocs, common.ALLOCATION_COLUMNS)
  (workdir / "config.json").write_text(json.dumps(
      {"env": "integrator", "env_kwargs": {"num_tasks": 4}, "task_space": "finite"}))


@pytest.fixture
def workdir(tmp_path):
  """A two-process study (processes b1, b2) with AMF ahead of uniform under b1 only; b2 has fewer
  rounds (a larger batch at the same budget)."""
  demo = study("batch_size", "Does it work?", {"process": "b1"},
               {"integrator_gp": integrator_gp("quick", {"b1": {}, "b2": {}}),
                "integrator_nn": integrator_gp("quick")}, "quick")
  studies.write(demo, str(tmp_path))
  for tag, amf_level, rounds in (("b1", 0.9, ROUNDS), ("b2", 0.5, 1)):
    path = tmp_path / "batch_size" / "integrator_gp" / tag
    path.mkdir(parents=True)
    _write(path, _rows("amf", "k=6", amf_level, rounds) + _rows("uniform", "k=6", 0.5, rounds))
  return tmp_path


def test_arms_are_compared_with_their_reference_arm(workdir):
  text = report.build(str(workdir))
  lines = {}
  for line in text.splitlines():  # the success table comes first
    if line.startswith("| b"):
      lines.setdefault(line.split(" | ")[0].lstrip("| "), line)
  assert set(lines) == {"b1 amf", "b1 uniform", "b2 amf", "b2 uniform"}
  assert "reference" in lines["b1 amf"] and "reference" in lines["b1 uniform"]
  # b2 amf (0.5) against b1 amf (0.9): a clear loss, bold; b2 uniform against b1 uniform: none.
  cells = lines["b2 amf"].split(" | ")
  assert cells[4].startswith("**-0.4") and float(cells[5]) == 0.0
  assert not lines["b2 uniform"].split(" | ")[4].startswith("**")
  assert "Not run yet: integrator_nn." in text
  assert "`discretisation`" in text  # the pending study is named


def test_a_running_process_is_named_and_its_partial_tables_left_out(workdir):
  (workdir / "batch_size" / "integrator_gp" / "b2" / "launch.json").write_text(
      json.dumps({"status": "running"}))
  text = report.build(str(workdir))
  assert "Running or unfinished (its partial tables left out): integrator_gp/b2." in text
  assert "| b1 amf |" in text and "| b2 amf |" not in text
  (workdir / "batch_size" / "integrator_gp" / "b2" / "metrics.csv").unlink()  # none written yet
  assert "Running or unfinished (its partial tables left out): integrator_gp/b2." in (
      report.build(str(workdir)))


def test_shards_of_one_process_read_as_that_process(tmp_path):
  """Processes that each hold one mix of a process (`shards`) give one table and the gap figure,
  their arms labelled by method and mix, not by shard."""
  demo = study("pretraining_mix", "Does the mix matter?", {"method": "uniform"},
               {"integrator_nn": active_finetune("integrator", "quick", {"m-a": {}, "m-b": {}},
                                                 shards=True)}, "quick", gap=("amf", "uniform"))
  studies.write(demo, str(tmp_path))
  for tag, variant, amf_level in (("m-a", "a", 0.9), ("m-b", "b", 0.5)):
    path = tmp_path / "pretraining_mix" / "integrator_nn" / tag
    path.mkdir(parents=True)
    _write(path, _rows("amf", variant, amf_level) + _rows("uniform", variant, 0.5))
  report.write(str(tmp_path))
  text = (tmp_path / "REPORT.md").read_text()
  assert "| amf · a |" in text and "| uniform · b |" in text and "m-a amf" not in text
  amf_a = next(line for line in text.splitlines() if line.startswith("| amf · a |"))
  delta = amf_a.split(" | ")[4]  # against uniform · a, its own shard's mix: 0.9 - 0.5
  assert delta.startswith("**") and 0.35 < float(delta.strip("*").split()[0]) < 0.45
  assert "(pretraining_mix/figures/integrator_nn_gap.png)" in text


def test_figures_are_written_and_linked(workdir):
  report.write(str(workdir))
  text = (workdir / "REPORT.md").read_text()
  for name in ("curves_success", "curves_return", "differences", "allocations"):
    path = f"batch_size/figures/integrator_gp_{name}.png"
    assert f"({path})" in text and (workdir / path).stat().st_size > 0


def test_interval_estimates_cover_the_mean_and_give_the_iqm():
  arm = report.Arm("", "amf", "k=6", list(range(8)),
                   {"success": {"final": np.arange(8.0), "auc": np.ones(8)}})
  est = report.interval_estimates(arm, ("success",))
  mean, low, high, iqm = est["success", "final"]
  assert mean == pytest.approx(3.5) and low < mean < high and iqm == pytest.approx(3.5)
  assert est["success", "auc"][:3] == pytest.approx((1, 1, 1))


def test_unpaired_seeds_are_refused():
  a = report.Arm("", "amf", "v", [0, 1], {"success": {"final": np.zeros(2)}})
  b = report.Arm("", "uniform", "v", [0, 2], {"success": {"final": np.zeros(2)}})
  with pytest.raises(ValueError, match="different seeds"):
    report.comparison(a, b, "success", "final")


def test_an_empty_workdir_is_refused(tmp_path):
  with pytest.raises(ValueError, match="No study under"):
    report.build(str(tmp_path))


def test_a_rebuilt_report_equals_the_first_and_its_intervals_are_summary_csvs(workdir):
  first, again = report.build(str(workdir)), report.build(str(workdir))
  drop_date = lambda text: [l for l in text.splitlines() if not l.startswith("Scale:")]
  assert drop_date(first) == drop_date(again)
  rows = metrics.read_csv(workdir / "batch_size" / "integrator_gp" / "b1" / "metrics.csv")
  expected = {r["method"]: r for r in metrics.summary(rows, "success")}["amf"]
  line = next(l for l in first.splitlines() if l.startswith("| b1 amf"))
  assert (f"{expected['final_mean']:.3f} [{expected['final_low']:.3f}, "
          f"{expected['final_high']:.3f}]") in line


def test_a_process_that_ran_with_older_settings_counts_as_stale(tmp_path):
  demo = study("batch_size", "Does it work?", {"process": "b1"},
               {"integrator_gp": integrator_gp("quick", {"b1": {}, "b2": {}}, num_seeds=4)},
               "quick")
  for process, seeds in zip(studies.processes(demo), (4, 2)):  # b2 ran before the study
    config = studies.experiment_config(process)                 # asked for 4 seeds
    config.num_seeds = seeds
    path = tmp_path / process.path
    path.mkdir(parents=True)
    (path / "config.json").write_text(config.to_json())
    (path / "launch.json").write_text(json.dumps({"status": "done", "seconds": 60.0,
                                                  "cpu_seconds": 90.0}))
  assert report.times(str(tmp_path), demo.to_dict()) == {
      "processes": 2, "done": 1, "stale": 1, "seconds": 60.0, "cpu_seconds": 90.0, "cpu_of": 1,
      "intervals": []}


def test_the_time_table_shows_summed_wall_time_and_the_elapsed_span(tmp_path):
  """Two processes of 30 and 20 min that overlap by 10, and a third of 10 min in two attempts
  15 min apart from the first's start to the last's end: 60 min summed, 40 + 15 elapsed."""
  demo = study("batch_size", "Does it work?", {"process": "b1"},
               {"integrator_gp": integrator_gp("quick", {"b1": {}, "b2": {}, "b4": {}})},
               "quick")
  studies.write(demo, str(tmp_path))
  records = ({"seconds": 1800.0, "finished": "2026-12-07 10:30:00"},
             {"seconds": 1200.0, "finished": "2026-12-07 10:40:00"},
             {"seconds": 600.0, "started": "2026-12-07 11:30:00", "attempts": 2,
              "finished": "2026-12-07 11:45:00"})
  for process, record in zip(studies.processes(demo), records):
    path = tmp_path / process.path
    path.mkdir(parents=True)
    _write(path, _rows("amf", "k=6", 0.9) + _rows("uniform", "k=6", 0.5))
    (path / "config.json").write_text(studies.experiment_config(process).to_json())
    (path / "launch.json").write_text(json.dumps({"status": "done", **record}))
  t = report.times(str(tmp_path), demo.to_dict())
  assert t["seconds"] == 3600.0 and report.span(t["intervals"]) == 3300.0
  text = report.build(str(tmp_path))
  assert "| [batch_size](#batch_size) | 3 | 3 | 0 | 60.0 min | 55.0 min | – |" in text
  assert "| total | 3 | 3 | 0 | 60.0 min | 55.0 min | – |" in text


def test_span_is_the_length_of_the_union():
  assert report.span([]) == 0.0
  assert report.span([(0, 10), (5, 7), (20, 30), (25, 40), (40, 41)]) == 31.0
  assert report.span([(5, 6), (0, 10)]) == 10.0


def test_a_larger_batch_is_compared_at_the_demonstration_counts_it_was_evaluated_at():
  """A reference that reaches 1 after one demonstration, an arm of batch 4 that reaches 1 at
  four: the AUC over each one's own rounds says -0.375, at matched counts (0 and 4) 0."""
  seeds = [0, 1, 2]
  ref = report.Arm("b1", "amf", "v", seeds,
                   {"success": {"curve": np.tile([0., 1, 1, 1, 1], (3, 1))}}, (0, 1, 2, 3, 4))
  arm = report.Arm("b4", "amf", "v", seeds, {"success": {"curve": np.tile([0., 1], (3, 1))}},
                   (0, 4))
  auc = lambda a: metrics.auc(a.values["success"]["curve"])
  assert np.mean(auc(arm) - auc(ref)) == pytest.approx(-0.375)
  assert report.matched_comparison(arm, ref, "success")["mean"] == 0.0
  assert report.matched_comparison(ref, ref, "success") is None  # the same counts
  assert report.matched_comparison(ref, arm, "success") is None  # counts the arm lacks


def test_the_report_gives_the_matched_count_comparison_under_the_table(workdir):
  text = report.build(str(workdir))
  line = next(l for l in text.splitlines() if l.startswith("Δ success AUC vs ref. at matched"))
  assert "b2 amf **-0.200" in line and "b1 amf" not in line  # (0 + (0.5 - 0.9)) / 2


def test_a_bold_difference_that_the_t_interval_does_not_confirm_is_marked():
  """One large difference among small positive ones: every bootstrap resample's mean is > 0, the
  t-interval (wide from the outlier) covers 0."""
  c = report.paired([0.001] * 9 + [0.1])
  assert c["low"] > 0 and c["t_low"] < 0
  assert report._delta(c).startswith("**+0.011") and report._delta(c).endswith("†")
  steady = report.paired(np.linspace(0.05, 0.07, 10))
  assert report._delta(steady).endswith("**")  # both intervals exclude 0: no mark
  assert not report._delta(report.paired([-0.1, 0.1, 0.0])).startswith("**")


def test_a_comparison_equal_on_every_seed_says_it_carries_no_information(workdir):
  """b2's uniform arm ends where b1's does on every seed (same levels, same seed noise): its
  final Δ, P and MDD give way to the ceiling's note; the power line asks no seeds of a tie."""
  assert report._delta(report.paired(np.zeros(5))) == report.CEILING
  text = report.build(str(workdir))
  cells = next(l for l in text.splitlines() if l.startswith("| b2 uniform")).split(" | ")
  assert cells[4:7] == [report.CEILING, "–", "–"] and "0.000 [+0.000" not in cells[4]
  top = {"success": {"auc": np.ones(4)}}
  tied = [report.Arm("", m, "v", [0, 1, 2, 3], top) for m in ("amf", "uniform")]
  study_of_two = {"metrics": ["success"], "reference": {"method": "uniform"}}
  assert "amf – (at the ceiling)" in report.power_line(tied, study_of_two)[0]


def test_the_report_says_how_often_an_arm_asks_its_references_batch(workdir):
  """The fixture's arms ask for task `seed % 4` every round: each batch equals its reference's
  in every round both have (b2 has one round)."""
  text = report.build(str(workdir))
  line = next(l for l in text.splitlines() if l.startswith("**same batch as the reference**"))
  assert "b2 amf 6/6 in round 1, 6/6 in all" in line and "b1 amf" not in line
