"""Reproduces the project's figures and studies at a chosen scale, here or on a cluster.

  python -m launch.reproduce --figures=integrator_gp --scale=quick --workdir=runs/demo
  python -m launch.reproduce --figures=ablations --scale=quick --workdir=runs/ablations
  python -m launch.reproduce --figures=kernels,forgetting --scale=paper --workdir=runs/paper \
      --executor=slurm --cluster_args=timeout_min=120,cpus_per_task=8,slurm_partition=cpu

Each figure sweep writes into `<workdir>/<figure>/`, each study's process into
`<workdir>/<study>/<env>[/<run>]/` (`configs/studies/`), with its log (`log.txt`) and its
wall time (`launch.json`). A rerun skips the processes that finished with the same command
and those another live launcher on this machine is running (so two launchers may share a
study), and resumes the others from their checkpoints. At the end the per-study time table is
printed and, when studies ran, `<workdir>/REPORT.md` is written (`python -m launch.report`
rebuilds it from the workdir alone).
"""
import ast
import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import NamedTuple

import ml_collections
import psutil
from absl import flags, logging

from amf import checkpoint, cli, envs, sweep
from configs import studies as study_configs
from experiments import arm_index
from launch import studies

def _env_figure(experiment: str, env: str):
  return f"experiments.{experiment}", {
      "quick": [f"--config=configs/{experiment}.py:{env},quick"],
      "paper": [f"--config=configs/{experiment}.py:{env}"]}


def figures() -> dict[str, tuple[str, dict]]:
  """Figure sweep -> (experiment module, its flags at each scale): AMF-GP on the integrator,
  and per registered environment (`amf.envs`) its expert's check (unless exact), AMF-NN (AMF
  vs uniform vs rebalancing, subset vs uniform pre-training) and the BC data-efficiency curves
  of its learner, the testbed every study stands on."""
  out = {"integrator_gp": ("experiments.integrator_gp", {
      "quick": ["--config=configs/integrator_gp.py:quick"],
      "paper": ["--config=configs/integrator_gp.py:paper"]})}
  out.update({f"experts_{env}": _env_figure("experts", env)
              for env, reg in envs.ENVS.items() if reg.testbed.expert_figure})
  for experiment in ("active_finetune", "data_efficiency"):
    out.update({f"{experiment}_{env}": _env_figure(experiment, env) for env in envs.ENVS})
  return out


SCALES = ("quick", "paper")
ABLATIONS = "ablations"  # every study of configs/studies
EXECUTORS = ("local", "slurm", "submitit_local", "debug")


class Job(NamedTuple):
  """One process: `name` (its workdir below the root), the study or figure it belongs to;
  a study's process also carries its resolved config (JSON), what `done` compares, and the
  workdir of an earlier process of the plan with the same config (`twin`), whose outputs it
  copies instead of computing them again."""
  name: str
  group: str
  argv: list
  workdir: str
  config: str = ""
  twin: str = ""


def selected(names) -> list[str]:
  """Figure sweeps and studies to run: `all` is every figure, `ablations` every study."""
  sweeps = figures()
  if names == ["all"]:
    return list(sweeps)
  out = []
  for name in names:
    out.extend(study_configs.STUDIES if name == ABLATIONS else [name])
  unknown = sorted(set(out) - set(sweeps) - set(study_configs.STUDIES))
  if unknown:
    raise ValueError(f"Unknown figure sweep(s) or study(s) {unknown}; choose from "
                     f"{sorted(sweeps)}, the studies {list(study_configs.STUDIES)}, 'all' "
                     f"or '{ABLATIONS}'.")
  return list(dict.fromkeys(out))


def command(figure: str, scale: str, workdir: str, overwrite: bool = False) -> list[str]:
  module, scales = figures()[figure]
  return ([sys.executable, "-m", module, *scales[scale], f"--workdir={workdir}"]
          + (["--overwrite"] if overwrite else []))


def plan(names, scale: str, root: str, overwrite: bool = False, envs=()) -> list[Job]:
  """Every process of `names` (figures and studies), checked before any of them runs; with
  `envs`, only the studies' processes on those environments (e.g. the integrator's, which a
  laptop runs at the paper's scale, leaving reacher and pusher to a cluster)."""
  sweeps = figures()
  study_envs = {process.env for name in names if name not in sweeps
                for process in studies.processes(study_configs.get(name, scale))}
  unknown = sorted(set(envs) - study_envs)
  if unknown:
    raise ValueError(f"--envs names {unknown}, which none of {list(names)} runs at the {scale} "
                     f"scale; choose from {sorted(study_envs)}.")
  jobs = []
  for name in names:
    if name in sweeps:
      workdir = os.path.join(root, name)
      jobs.append(Job(name, name, command(name, scale, workdir, overwrite), workdir))
    else:
      jobs.extend(study_jobs(study_configs.get(name, scale), root, overwrite, envs))
  return with_twins(jobs)


def only(jobs: list[Job], patterns) -> list[Job]:
  """The jobs whose name (a figure, or a study process's path such as
  `pretraining_mix/pusher/skewed-1`) matches one of the shell `patterns`, e.g. to run one
  process or to split a study's processes between two launchers; all with no `patterns`."""
  if not patterns:
    return jobs
  kept = [job for job in jobs if any(fnmatch.fnmatch(job.name, p) for p in patterns)]
  if not kept:
    raise ValueError(f"--processes {list(patterns)} match none of {[j.name for j in jobs]}.")
  return kept


def with_twins(jobs: list[Job]) -> list[Job]:
  """Each study process whose resolved config an earlier one has gets that one as its twin
  (e.g. `batch_size/reacher/b1` and `forgetting/reacher/adaptive_prior`): run once per plan."""
  first = {}
  out = []
  for job in jobs:
    key = json.dumps(json.loads(job.config), sort_keys=True) if job.config else None
    out.append(job._replace(twin=first[key]) if key in first else job)
    if key is not None:
      first.setdefault(key, job.workdir)
  return out


def study_jobs(study, root: str, overwrite: bool = False, envs=()) -> list[Job]:
  """A study's processes (those on `envs`, if given); a bad study or process is refused here.
  Writes its `study.json` (what the report reads)."""
  studies.check(study)
  jobs = []
  for process in studies.processes(study):
    if envs and process.env not in envs:
      continue
    studies.validate(process)
    jobs.append(Job(process.path, study.name, studies.command(process, root, overwrite),
                    os.path.join(root, process.path),
                    studies.experiment_config(process).to_json()))
  studies.write(study, root)
  return jobs


def status(job: Job) -> dict:
  """The job's `launch.json` ({} if it never ran here)."""
  return studies.launch_record(job.workdir)


def _command(argv) -> list:
  """A process's command without its `--workdir`: the record lives in the workdir, so outputs
  moved or committed elsewhere (e.g. `docs/ablations_paper/`) still match their command."""
  return [a for a in argv if not a.startswith(("--workdir=", "--arms="))]


def done(job: Job) -> bool:
  """Whether the job finished before (wherever its workdir was) with the same config: a study's
  process compares its resolved config with the `config.json` it wrote, so a changed default
  reruns it and a reworded command that resolves alike does not; a figure compares commands."""
  if status(job).get("status") != "done":
    return False
  if not job.config:
    return _command(status(job).get("argv", [])) == _command(job.argv[1:])
  return studies.holds(job.workdir, _parsed(job.config))


def _arms_store(job: Job) -> str:
  """The `--arms` folder of a study process's command ("" for a figure)."""
  return next((a.removeprefix("--arms=") for a in job.argv if a.startswith("--arms=")), "")


def _parsed(config: str):
  return json.loads(config) if config else None


_ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ ")
_ABSL_WARNING = re.compile(r"^W\d{4} [\d:.]+\s+\d+ ")


def on_console(line: str) -> bool:
  """Whether a process's output line is shown on the console (all are kept in its log):
  absl's and Python's warnings and JAX's optional-plugin notices are not."""
  return not (_ABSL_WARNING.match(line) or "Warning: " in line
              or line.startswith(("Failed to import", "  warnings.warn")))


def _cpu(process: psutil.Process, own: bool = True) -> float:
  """User + system seconds so far of `process`'s waited children and, with `own`, of itself
  (0 once it is gone)."""
  try:
    t = process.cpu_times()
  except psutil.Error:
    return 0.0
  return t.children_user + t.children_system + (t.user + t.system if own else 0.0)


# Seconds between updates of a running process's `launch.json`, so that a killed attempt's
# time is known to the run that resumes it.
HEARTBEAT = 60.0


def running_elsewhere(job: Job) -> int:
  """The pid of another launcher on this machine that is running the job now (its
  `launch.json` says so, and that pid is alive with the command it recorded), else 0. A
  launcher killed without finishing leaves a stale record, which is not counted."""
  record = status(job)
  pid = record.get("pid", 0)
  if (record.get("status") != "running" or record.get("host") != socket.gethostname()
      or pid in (0, os.getpid())):
    return 0
  try:  # the pid may since belong to an unrelated process
    return pid if psutil.Process(pid).cmdline() == record.get("launcher") else 0
  except psutil.Error:
    return 0


def execute(job: Job, label: str = "") -> dict:
  """Runs `job` (unless it finished with the same command), its output streamed with its
  name in front and kept in `log.txt`; records its status, wall time and CPU time (which,
  unlike wall time, does not grow when other work shares the cores) in `launch.json`. A run
  that resumes a killed or failed attempt adds that attempt's time (`attempts` counts them)."""
  if done(job):
    logging.info("%s %s: done before (%.1f s), skipped", label, job.name, status(job)["seconds"])
    index_arms(job, _arms_store(job))
    return status(job)
  if pid := running_elsewhere(job):
    logging.info("%s %s: being run by launcher %d, skipped", label, job.name, pid)
    return status(job)
  if job.twin and done(job._replace(workdir=job.twin, twin="")):
    return copy_twin(job, label)
  if job.config and "--overwrite" in job.argv and studies.stored_config(job.workdir) not in (
      None, _parsed(job.config)):
    # Another config's outputs: deleted here, not by the process, which would take the log
    # this function is writing with them.
    logging.info("%s %s: --overwrite: deleting another config's outputs", label, job.name)
    shutil.rmtree(job.workdir)
  os.makedirs(job.workdir, exist_ok=True)
  earlier = status(job)
  earlier = earlier if earlier.get("status") in ("running", "failed") else {}
  logging.info("%s %s: %s", label, job.name, "resumed" if earlier else "started")
  path = os.path.join(job.workdir, "launch.json")

  def write(record: dict, seconds: float, cpu: float) -> dict:
    record = dict(record, seconds=round(earlier.get("seconds", 0.0) + seconds, 1),
                  cpu_seconds=round(earlier.get("cpu_seconds", 0.0) + cpu, 1),
                  attempts=earlier.get("attempts", 1) + 1 if earlier else 1)
    checkpoint.save_json(path, record, indent=2)
    return record

  # Until it finishes, the report leaves out the tables it is writing.
  running = {"argv": job.argv[1:], "status": "running",
             "started": earlier.get("started", time.strftime("%Y-%m-%d %H:%M:%S")),
             "host": socket.gethostname(), "pid": os.getpid(), "launcher": sys.orig_argv}
  write(running, 0.0, 0.0)
  launcher = psutil.Process()
  start, cpu_start = time.time(), _cpu(launcher, own=False)
  stop = threading.Event()
  # Line-buffered, so `tail -f log.txt` follows a running process.
  with open(os.path.join(job.workdir, "log.txt"), "a", buffering=1) as log, subprocess.Popen(
      job.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
    # On a clock, not at output lines: a process can be silent for minutes (a round).
    def beat():
      while not stop.wait(HEARTBEAT):
        write(running, time.time() - start, _cpu(psutil.Process(proc.pid)))

    heartbeat = threading.Thread(target=beat, daemon=True)
    heartbeat.start()
    for line in proc.stdout:
      log.write(line)
      if on_console(line):
        print(f"  {job.name} | {_ABSL_PREFIX.sub('', line)}", end="", flush=True)
  stop.set()
  heartbeat.join()  # its last write comes before the final one
  record = {"argv": job.argv[1:], "status": "done" if proc.returncode == 0 else "failed",
            "returncode": proc.returncode, "started": running["started"],
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
  record = write(record, time.time() - start, _cpu(launcher, own=False) - cpu_start)
  logging.info("%s %s: %s in %.1f s (log: %s)", label, job.name, record["status"],
               record["seconds"], os.path.join(job.workdir, "log.txt"))
  return record


def job_arms(job: Job) -> dict:
  """A study process's arms: `{label: (key, identity)}` (`amf.sweep.program_arms`)."""
  if not job.config:
    return {}
  spec = sweep.Spec.from_config(ml_collections.ConfigDict(json.loads(job.config)))
  return {label: arm for _, _, ids in sweep.program_arms(spec) for label, arm in ids.items()}


def arm_count(jobs: list[Job]) -> tuple[int, int]:
  """`(arms, distinct arms)` of the studies' processes among `jobs`."""
  keys = [key for job in jobs for key, _ in job_arms(job).values()]
  return len(keys), len(set(keys))


def index_arms(job: Job, store: str) -> None:
  """Indexes a finished process's arms in `store`, e.g. one that ran before the plan had an
  index, so later processes read them (`experiments.arm_index`)."""
  index = arm_index.Folder(store, job.workdir)
  for label, (key, identity) in job_arms(job).items():
    if index.locate(key) is None:
      index.record(key, identity, label)


def copy_twin(job: Job, label: str = "") -> dict:
  """The finished twin's outputs (not its checkpoints or log) as `job`'s, recorded as done in
  no time, with where they came from."""
  shutil.copytree(job.twin, job.workdir, dirs_exist_ok=True,
                  ignore=shutil.ignore_patterns("checkpoints", "launch.json", "log.txt"))
  record = {"argv": job.argv[1:], "status": "done", "seconds": 0.0, "returncode": 0,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "copied_from": os.path.relpath(job.twin, job.workdir)}
  checkpoint.save_json(os.path.join(job.workdir, "launch.json"), record, indent=2)
  logging.info("%s %s: the same config as %s, its outputs copied", label, job.name, job.twin)
  return record


def run_jobs(jobs: list[Job]) -> list[dict]:
  """Runs `jobs` one after another: the body of a local run and of every cluster job."""
  return [execute(job, f"[{i + 1}/{len(jobs)}]") for i, job in enumerate(jobs)]


def time_table(jobs: list[Job]) -> list[dict]:
  """Per study or figure: processes, how many finished, their wall time (from `launch.json`)."""
  rows = {}
  for job in jobs:
    record = status(job)
    row = rows.setdefault(job.group, {"study": job.group, "processes": 0, "done": 0,
                                      "seconds": 0.0})
    row["processes"] += 1
    row["done"] += done(job)
    row["seconds"] += record.get("seconds", 0.0)
  return list(rows.values())


def format_table(rows: list[dict]) -> str:
  total = sum(r["seconds"] for r in rows)
  lines = [f"{'study':<26}{'processes':>10}{'done':>6}{'wall time':>12}"]
  lines += [f"{r['study']:<26}{r['processes']:>10}{r['done']:>6}{_minutes(r['seconds']):>12}"
            for r in rows]
  return "\n".join(lines + [f"{'total':<42}{_minutes(total):>12}"])


def _minutes(seconds: float) -> str:
  return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def cluster_parameters(args) -> dict:
  """`--cluster_args` (key=value, values as Python literals where they parse) for submitit's
  `update_parameters`, e.g. timeout_min=120, slurm_partition=cpu."""
  out = {}
  for arg in args:
    key, sep, value = arg.partition("=")
    if not sep:
      raise ValueError(f"--cluster_args takes key=value entries, got {arg!r}.")
    try:
      out[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      out[key] = value
  return out


def submit(jobs: list[Job], executor: str, folder: str, parameters: dict, per: str) -> list:
  """Submits `jobs` with submitit (one job per study or per process); returns its jobs."""
  import submitit  # only here: the local path does not need it
  groups = {}
  for job in jobs:
    groups.setdefault(job.group if per == "study" else job.name, []).append(job)
  cluster = {"slurm": "slurm", "submitit_local": "local", "debug": "debug"}[executor]
  ex = submitit.AutoExecutor(folder=folder, cluster=cluster)
  ex.update_parameters(**parameters)
  submitted = []
  with ex.batch():
    for name, group in groups.items():
      submitted.append((name, ex.submit(run_jobs, group)))
  return submitted


def define_flags() -> None:
  """The launcher's flags; defined on demand, as experiment modules define `--workdir` too."""
  flags.DEFINE_list("figures", ["all"], f"What to run: 'all' (every figure sweep), "
                    f"'{ABLATIONS}' (every study), or names of {sorted(figures())} and of the "
                    f"studies {list(study_configs.STUDIES)}.")
  flags.DEFINE_enum("scale", "quick", SCALES, "quick: fits a laptop CPU; paper: as in the "
                    "paper (10 seeds, every setting).")
  flags.DEFINE_string("workdir", "runs/reproduce", "Root of all outputs.")
  flags.DEFINE_bool("overwrite", False, "Delete a sweep's workdir that holds another config's "
                    "outputs (e.g. another scale's) instead of refusing it.")
  flags.DEFINE_enum("executor", "local", EXECUTORS, "local: here, one process after another; "
                    "slurm: submitit jobs on Slurm; submitit_local / debug: submitit's local "
                    "executors (tests, or a machine without Slurm).")
  flags.DEFINE_enum("jobs", "study", ("study", "process"), "With submitit: one job per study "
                    "or per process.")
  flags.DEFINE_list("cluster_args", ["timeout_min=120", "cpus_per_task=8"], "submitit "
                    "parameters, key=value, e.g. slurm_partition=cpu,gpus_per_node=1.")
  flags.DEFINE_list("envs", [], "Only the studies' processes on these environments (e.g. "
                    "integrator_gp,integrator_nn); the report lists the others as not run.")
  flags.DEFINE_list("processes", [], "Only the processes whose name matches one of these shell "
                    "patterns, e.g. 'pretraining_mix/pusher/skewed-*' (--dry_run lists them).")
  flags.DEFINE_bool("dry_run", False, "Check every process and print its command; run none.")
  flags.DEFINE_bool("wait", False, "With submitit: wait for the jobs, then print the time "
                    "table and write the report (always so with --executor=local).")


def main(argv):
  del argv
  args = flags.FLAGS
  names = selected(args.figures)
  parameters = cluster_parameters(args.cluster_args)
  jobs = only(plan(names, args.scale, args.workdir, args.overwrite, args.envs), args.processes)
  total, distinct = arm_count(jobs)
  logging.info("%d processes for %s at the %s scale in %s: %d method arms, %d distinct (each "
               "computed once, amf.arms)", len(jobs), ", ".join(names), args.scale,
               os.path.abspath(args.workdir), total, distinct)
  if args.dry_run:
    print("\n".join(f"{job.name}: {shlex.join(job.argv)}" for job in jobs))
    return
  if args.executor == "local":
    records = run_jobs(jobs)
  else:
    submitted = submit(jobs, args.executor, os.path.join(args.workdir, "submitit"), parameters,
                       args.jobs)
    for name, job in submitted:
      logging.info("submitted %s as job %s", name, job.job_id)
    if not args.wait:
      logging.info("When they finish: python -m launch.report --workdir=%s", args.workdir)
      return
    records = [r for _, job in submitted for r in job.result()]
  print(format_table(time_table(jobs)), flush=True)
  if any(name in study_configs.STUDIES for name in names):
    from launch import report  # matplotlib and rliable, only when there is a report
    logging.info("Report: %s", report.write(args.workdir))
  check(jobs, records, args.workdir)


def check(jobs: list[Job], records: list[dict], workdir: str) -> None:
  """Exits with an error naming the processes that failed. A process that another launcher
  is running is no failure: it is named, with the command that rebuilds the report."""
  elsewhere = [job.name for job, r in zip(jobs, records) if r.get("status") == "running"]
  if elsewhere:
    logging.info("Left to the launchers running them: %s; when they finish: python -m "
                 "launch.report --workdir=%s", elsewhere, workdir)
  failed = [job.name for job, r in zip(jobs, records)
            if r.get("status") not in ("done", "running")]
  if failed:
    raise SystemExit(f"{len(failed)} process(es) failed: {failed}; see their log.txt.")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
