"""The launcher (`launch/reproduce.py`): figure selection, commands per scale, Slurm scripts."""
import importlib
import json
import os
import socket
import subprocess
import sys

import jax
import ml_collections
import pytest

from amf import envs
from configs import studies as study_configs
from launch import reproduce


def test_all_selects_every_figure_and_unknown_names_are_refused():
  assert reproduce.selected(["all"]) == list(reproduce.figures())
  with pytest.raises(ValueError, match="nope"):
    reproduce.selected(["integrator_gp", "nope"])


@pytest.mark.parametrize("figure", sorted(reproduce.figures()))
@pytest.mark.parametrize("scale", reproduce.SCALES)
def test_every_figure_has_a_command_at_every_scale(figure, scale):
  cmd = reproduce.command(figure, scale, "/tmp/out")
  assert cmd[1:3] == ["-m", reproduce.figures()[figure][0]]
  assert cmd[-1] == "--workdir=/tmp/out"
  assert any(arg.startswith("--config=configs/") for arg in cmd)


def test_quick_and_paper_scales_differ():
  quick = reproduce.command("integrator_gp", "quick", "d")
  paper = reproduce.command("integrator_gp", "paper", "d")
  assert quick != paper and "--config=configs/integrator_gp.py:quick" in quick


def test_ablations_select_every_study():
  assert reproduce.selected(["ablations"]) == list(study_configs.STUDIES)
  assert reproduce.selected(["kernels", "integrator_gp", "kernels"]) == ["kernels",
                                                                         "integrator_gp"]
  assert reproduce.selected(["discretisation"]) == ["discretisation"]


def test_a_study_plan_has_a_process_per_env_and_run_and_writes_the_study(tmp_path):
  jobs = reproduce.plan(["batch_size", "integrator_gp"], "quick", str(tmp_path))
  assert [j.name for j in jobs] == [f"batch_size/integrator_gp/b{b}" for b in (1, 2, 4, 8)] + [
      "integrator_gp"]
  assert {j.group for j in jobs} == {"batch_size", "integrator_gp"}
  assert "--config.batch_size=4" in jobs[2].argv
  assert jobs[2].argv[-2:] == [f"--workdir={tmp_path}/batch_size/integrator_gp/b4",
                              f"--arms={tmp_path}/arms"]
  assert (tmp_path / "batch_size" / "study.json").exists()


def test_envs_keep_only_those_processes_and_unknown_envs_are_refused(tmp_path):
  jobs = reproduce.plan(["rebalancing", "kernels"], "paper", str(tmp_path),
                        envs=("integrator_gp", "integrator_nn"))
  assert [j.name for j in jobs] == ["rebalancing/integrator_gp", "rebalancing/integrator_nn",
                                    "kernels/integrator_nn"]
  with pytest.raises(ValueError, match=r"\['pushr'\].*choose from"):
    reproduce.plan(["rebalancing"], "paper", str(tmp_path), envs=("pushr",))


def test_processes_keep_the_matching_ones_and_a_pattern_matching_none_is_refused(tmp_path):
  jobs = reproduce.plan(["pretraining_mix"], "paper", str(tmp_path), envs=("pusher",))
  assert [j.name for j in reproduce.only(jobs, ["*/skewed-*", "*/uniform"])] == [
      f"pretraining_mix/pusher/{tag}" for tag in ("skewed-0_5", "skewed-1", "skewed-2", "uniform")]
  assert reproduce.only(jobs, []) == jobs
  with pytest.raises(ValueError, match=r"\['\*/skewd'\] match none"):
    reproduce.only(jobs, ["*/skewd"])


def test_cluster_parameters_parse_literals():
  assert reproduce.cluster_parameters(["timeout_min=120", "slurm_partition=cpu"]) == {
      "timeout_min": 120, "slurm_partition": "cpu"}
  with pytest.raises(ValueError, match="key=value"):
    reproduce.cluster_parameters(["timeout_min"])


def _job(tmp_path, name, code):
  return reproduce.Job(name, "demo", [sys.executable, "-c", code], str(tmp_path / name))


@pytest.mark.slow  # subprocesses
def test_a_finished_process_is_skipped_and_a_failed_one_is_recorded(tmp_path, capsys):
  ok = _job(tmp_path, "ok", "import time\nt = time.process_time()\n"
             "while time.process_time() - t < 0.5: pass\nprint('round 1/1')")
  first = reproduce.execute(ok)
  assert first["status"] == "done" and "round 1/1" in (tmp_path / "ok" / "log.txt").read_text()
  assert 0.5 <= first["cpu_seconds"] <= first["seconds"] * os.cpu_count() + 0.1  # its CPU time
  assert "ok | round 1/1" in capsys.readouterr().out
  assert reproduce.execute(ok) == first  # skipped: the same command finished before
  bad = _job(tmp_path, "bad", "raise SystemExit(3)")
  assert reproduce.execute(bad)["returncode"] == 3
  rows = reproduce.time_table([ok, bad])
  assert rows == [{"study": "demo", "processes": 2, "done": 1,
                   "seconds": first["seconds"] + reproduce.status(bad)["seconds"]}]
  assert "demo" in reproduce.format_table(rows)


@pytest.mark.slow  # a subprocess
def test_a_running_process_is_recorded_as_running_until_it_ends(tmp_path):
  record = tmp_path / "p" / "launch.json"
  job = _job(tmp_path, "p", f"import json; print(json.load(open({str(record)!r}))['status'])")
  assert reproduce.execute(job)["status"] == "done"
  assert (tmp_path / "p" / "log.txt").read_text() == "running\n"


def test_a_study_process_is_done_when_its_config_matches_not_its_wording(tmp_path):
  config = ml_collections.ConfigDict({"eval_episodes": 32, "methods": ("amf",)})
  job = reproduce.Job("s/pusher", "s", ["python", "-m", "x", "--config.eval_episodes=32"],
                      str(tmp_path), config.to_json())
  assert not reproduce.done(job)  # never ran
  (tmp_path / "launch.json").write_text(json.dumps({"status": "done", "argv": ["other"]}))
  (tmp_path / "config.json").write_text(config.to_json(indent=2))
  assert reproduce.done(job)  # another wording, the same resolved config
  # A setting added since is another config until `launch.migrate` writes it into the record
  # (tests/test_arms.py).
  newer = ml_collections.ConfigDict({**config.to_dict(), "eval_episode_batch": 0})
  assert not reproduce.done(job._replace(config=newer.to_json()))
  config.eval_episodes = 8  # e.g. a changed default: the committed outputs are stale
  assert not reproduce.done(job._replace(config=config.to_json()))
  (tmp_path / "launch.json").write_text(json.dumps({"status": "failed", "argv": []}))
  assert not reproduce.done(job)


def test_a_process_whose_twin_finished_copies_its_outputs_instead_of_running(tmp_path):
  config = ml_collections.ConfigDict({"budget": 16}).to_json()
  first = reproduce.Job("a/reacher/b1", "a", ["python", "-c", "raise SystemExit(1)"],
                        str(tmp_path / "a"), config)
  second = reproduce.Job("b/reacher/x", "b", ["python", "-c", "raise SystemExit(1)"],
                         str(tmp_path / "b"), config)
  other = first._replace(name="c", workdir=str(tmp_path / "c"), config=config.replace("16", "8"))
  jobs = reproduce.with_twins([first, other, second])
  assert [j.twin for j in jobs] == ["", "", first.workdir]
  (tmp_path / "a" / "checkpoints").mkdir(parents=True)
  (tmp_path / "a" / "config.json").write_text(config)
  (tmp_path / "a" / "metrics.csv").write_text("seed,success\n0,1.0\n")
  (tmp_path / "a" / "launch.json").write_text(json.dumps({"status": "done", "seconds": 9.0}))
  record = reproduce.execute(jobs[2])  # its own command would fail: it is not run
  assert record["status"] == "done" and record["seconds"] == 0.0
  assert record["copied_from"] == "../a" and reproduce.done(jobs[2])
  assert (tmp_path / "b" / "metrics.csv").read_text() == "seed,success\n0,1.0\n"
  assert not (tmp_path / "b" / "checkpoints").exists()


def test_overwrite_deletes_another_configs_outputs_but_keeps_this_runs_log(tmp_path):
  (tmp_path / "config.json").write_text('{"budget": 8}')
  (tmp_path / "metrics.csv").write_text("stale")
  job = reproduce.Job("s/e", "s", [sys.executable, "-c", "print('fresh')", "--overwrite"],
                      str(tmp_path), '{"budget": 16}')
  assert reproduce.execute(job)["status"] == "done"
  assert not (tmp_path / "metrics.csv").exists()
  assert "fresh" in (tmp_path / "log.txt").read_text()


def test_arms_shared_by_processes_are_counted_and_a_finished_ones_indexed(tmp_path):
  from configs import integrator_gp
  jobs = []
  for name, methods in (("a", ("amf", "uniform")), ("b", ("uniform", "rebalancing"))):
    config = integrator_gp.get_config("quick")
    config.methods = methods
    jobs.append(reproduce.Job(name, "s", ["x", f"--arms={tmp_path / 'arms'}"],
                              str(tmp_path / name), config.to_json()))
  assert reproduce.arm_count(jobs) == (4, 3)  # uniform is one arm of both
  done = jobs[0]
  os.makedirs(done.workdir)
  (tmp_path / "a" / "config.json").write_text(done.config)
  (tmp_path / "a" / "launch.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
  for table in ("metrics", "per_task", "allocations"):
    (tmp_path / "a" / f"{table}.csv").write_text("method,seed\namf,0\nuniform,0\n")
  reproduce.execute(done)  # skipped, and its arms indexed for the processes after it
  assert sorted(os.listdir(tmp_path / "arms")) == sorted(
      f"{key}.json" for key, _ in reproduce.job_arms(done).values())


@pytest.mark.slow  # validates the plan's processes (builds their environments)
def test_the_paper_plan_runs_the_seeds_power_needs_and_keeps_the_pilots(tmp_path):
  jobs = reproduce.plan(["batch_size", "forgetting", "rebalancing"], "paper", str(tmp_path),
                        envs=("reacher", "pusher"))
  seeds = {j.name: json.loads(j.config)["num_seeds"] for j in jobs}
  assert {seeds[f"batch_size/reacher/b{b}"] for b in (1, 2, 4, 8)} == {40}  # the pilot's
  assert seeds["forgetting/reacher/replay"] == seeds["rebalancing/reacher"] == (
      envs.testbed("reacher").study_seeds)
  assert seeds["forgetting/pusher/none"] == seeds["rebalancing/pusher"] == (
      envs.testbed("pusher").study_seeds)
  # b1 ran 40 seeds, so forgetting's adaptive_prior (the same settings at 20) is no twin of it.
  assert not any(j.twin for j in jobs)


@pytest.mark.slow  # submitit starts a process per job
def test_submitit_local_executor_runs_one_job_per_study(tmp_path):
  jobs = [_job(tmp_path, "a", "print(1)"), _job(tmp_path, "b", "print(2)")]
  submitted = reproduce.submit(jobs, "submitit_local", str(tmp_path / "submitit"),
                               {"timeout_min": 5}, per="study")
  assert len(submitted) == 1  # both jobs belong to the study "demo"
  records = submitted[0][1].result()
  assert [r["status"] for r in records] == ["done", "done"]
  assert all(reproduce.done(job) for job in jobs)


@pytest.mark.parametrize("figure", sorted(reproduce.figures()))
@pytest.mark.parametrize("scale", reproduce.SCALES)
def test_every_command_loads_its_experiments_config_at_its_scale_and_env(figure, scale):
  config = next(a for a in reproduce.command(figure, scale, "d") if a.startswith("--config="))
  path, _, arg = config.removeprefix("--config=").partition(":")
  experiment = reproduce.figures()[figure][0]
  assert path == f"configs/{experiment.removeprefix('experiments.')}.py"
  module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
  loaded = module.get_config(arg) if arg else module.get_config()
  assert loaded.scale == scale
  (env,) = [e for e in envs.ENVS if e in figure.split("_")]  # every figure names its environment
  assert loaded.env == env


@pytest.mark.slow  # runs a tiny study end to end: an AMF-GP process, then the report
def test_a_tiny_study_runs_is_skipped_when_done_and_is_reported(tmp_path, monkeypatch):
  from configs.studies import integrator_gp, study
  from launch import report
  # The process compiles into the tests' cache (conftest.py), so a second run loads it.
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", jax.config.jax_compilation_cache_dir)
  tiny = dict(num_seeds=2, ks=(2,), plot_ks=(2,), budget=2, eval_episodes=2,
              methods=("amf", "uniform"))
  demo = study("rebalancing", "Does AMF beat uniform?", {"method": "uniform"},
               {"integrator_gp": integrator_gp("quick", **tiny)}, "quick")
  jobs = reproduce.study_jobs(demo, str(tmp_path))
  (record,) = reproduce.run_jobs(jobs)
  assert record["status"] == "done" and reproduce.run_jobs(jobs) == [record]  # skipped
  # Outputs moved elsewhere (e.g. committed under docs/) still count as done there.
  import shutil
  shutil.copytree(tmp_path / "rebalancing", tmp_path / "moved" / "rebalancing")
  moved = reproduce.study_jobs(demo, str(tmp_path / "moved"))
  assert moved[0].argv != jobs[0].argv and reproduce.done(moved[0])
  with open(report.write(str(tmp_path))) as f:
    text = f.read()
  assert "| amf | 2 |" in text and "| uniform | 2 |" in text
  assert "(rebalancing/figures/integrator_gp_differences.png)" in text


@pytest.mark.slow  # subprocesses
def test_a_process_another_live_launcher_runs_is_left_to_it(tmp_path):
  job = _job(tmp_path, "shared", "print('round 1/1')")
  other = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
  with subprocess.Popen(other, stdout=subprocess.PIPE, text=True) as launcher:
    launcher.stdout.readline()  # started with its own command (not still the forked pytest)
    os.makedirs(job.workdir)
    record = {"argv": job.argv[1:], "status": "running", "host": socket.gethostname(),
              "pid": launcher.pid, "launcher": other}
    (tmp_path / "shared" / "launch.json").write_text(json.dumps(record))
    assert reproduce.running_elsewhere(job) == launcher.pid
    left = reproduce.execute(job)
    assert left["status"] == "running"  # left to the other launcher
    assert not (tmp_path / "shared" / "log.txt").exists()
    reproduce.check([job], [left], str(tmp_path))  # no failure
    with pytest.raises(SystemExit, match=r"1 process\(es\) failed: \['a/reacher/x'\]"):
      reproduce.check([job, job._replace(name="a/reacher/x")], [left, {"status": "failed"}],
                      str(tmp_path))
    # The pid alive with another command (reused by an unrelated process): not counted.
    (tmp_path / "shared" / "launch.json").write_text(json.dumps(dict(record, launcher=["x"])))
    assert reproduce.running_elsewhere(job) == 0
    (tmp_path / "shared" / "launch.json").write_text(json.dumps(record))
    launcher.kill()
  # The other launcher is gone (killed mid-run): its stale record does not block a rerun.
  assert reproduce.running_elsewhere(job) == 0
  assert reproduce.execute(job)["status"] == "done"


@pytest.mark.slow  # subprocesses
def test_a_resumed_process_counts_the_time_of_its_killed_attempt(tmp_path, monkeypatch):
  monkeypatch.setattr(reproduce, "HEARTBEAT", 0.05)
  # It burns CPU silently (as in a round), then prints its own launch.json as the launcher
  # keeps it while it runs.
  code = ("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
          "time.sleep(0.2)\n"
          "print(open('launch.json').read().replace('\\n', ' '), flush=True)")
  job = _job(tmp_path, "resumed", code)
  os.makedirs(job.workdir)
  killed = {"argv": job.argv[1:], "status": "running", "started": "2026-12-06 19:02:06",
            "host": socket.gethostname(), "pid": 0, "seconds": 100.0, "cpu_seconds": 90.0}
  (tmp_path / "resumed" / "launch.json").write_text(json.dumps(killed))
  monkeypatch.chdir(job.workdir)  # where the process reads its launch.json
  record = reproduce.execute(job)
  assert record["status"] == "done" and record["attempts"] == 2
  assert record["started"] == "2026-12-06 19:02:06"
  assert 100.5 <= record["seconds"] < 160 and 90.3 <= record["cpu_seconds"] < 150
  seen = json.loads((tmp_path / "resumed" / "log.txt").read_text().splitlines()[-1])
  assert seen["status"] == "running" and seen["seconds"] > 100  # updated while it ran
  assert seen["cpu_seconds"] >= 90.3  # the running process's CPU time, read from /proc


def test_the_console_hides_warnings_but_not_lines_that_start_with_w():
  assert not reproduce.on_console("W1207 07:11:06.985202   11950 sweep.py:58] slow\n")
  assert not reproduce.on_console("/x.py:480: UserWarning: Brax System ...\n")
  assert not reproduce.on_console("Failed to import warp: No module named 'warp'\n")
  for shown in ("Wrote metrics.csv\n", "Writing figures\n", "I1207 07:11:06.9 1 a.py:1] round 3\n"):
    assert reproduce.on_console(shown)
