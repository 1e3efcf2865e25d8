"""Reproduces the project's figures at a chosen scale, locally or as Slurm jobs.

  python -m launch.reproduce --figures=integrator_gp --scale=quick --workdir=runs/demo
  python -m launch.reproduce --figures=all --scale=paper --workdir=runs/paper --executor=slurm

Each figure sweep writes into `<workdir>/<figure>/`; a rerun resumes from its checkpoints.
"""
import os
import shlex
import shutil
import subprocess
import sys

from absl import app, flags, logging

# figure sweep -> (experiment module, its flags at each scale).
FIGURES = {
    "integrator_gp": ("experiments.integrator_gp", {
        "quick": ["--config=configs/integrator_gp.py:quick"],
        "paper": ["--config=configs/integrator_gp.py:paper"]}),
}
FIGURES.update({
    f"experts_{env}": ("experiments.experts", {
        "quick": [f"--config=configs/experts.py:{env},quick"],
        "paper": [f"--config=configs/experts.py:{env}"]})
    for env in ("reacher", "pusher")})
# AMF-NN on each environment: AMF vs uniform vs rebalancing, subset vs uniform pre-training.
FIGURES.update({
    f"active_finetune_{env}": ("experiments.active_finetune", {
        "quick": [f"--config=configs/active_finetune.py:{env},quick"],
        "paper": [f"--config=configs/active_finetune.py:{env}"]})
    for env in ("reacher", "pusher", "integrator")})
# BC data-efficiency curves of each environment's learner: the testbed every study stands on.
FIGURES.update({
    f"data_efficiency_{env}": ("experiments.data_efficiency", {
        "quick": [f"--config=configs/data_efficiency.py:{env},quick"],
        "paper": [f"--config=configs/data_efficiency.py:{env}"]})
    for env in ("reacher", "pusher", "integrator")})
SCALES = ("quick", "paper")


def selected(names) -> list[str]:
  if names == ["all"]:
    return list(FIGURES)
  unknown = sorted(set(names) - set(FIGURES))
  if unknown:
    raise ValueError(f"Unknown figure sweep(s) {unknown}; choose from {sorted(FIGURES)} "
                     "or 'all'.")
  return list(names)


def command(figure: str, scale: str, workdir: str, overwrite: bool = False) -> list[str]:
  module, scales = FIGURES[figure]
  return ([sys.executable, "-m", module, *scales[scale], f"--workdir={workdir}"]
          + (["--overwrite"] if overwrite else []))


def sbatch_script(figure: str, scale: str, workdir: str, slurm_args) -> str:
  options = "\n".join(f"#SBATCH {arg}" for arg in slurm_args)
  return (f"#!/bin/bash\n#SBATCH --job-name=amf-{figure}\n"
          f"#SBATCH --output={workdir}/slurm-%j.log\n{options}\n"
          f"cd {shlex.quote(os.getcwd())}\n{shlex.join(command(figure, scale, workdir))}\n")


def define_flags() -> None:
  """The launcher's flags; defined on demand, as experiment modules define `--workdir` too."""
  flags.DEFINE_list("figures", ["all"], f"Sweeps to run: 'all' or of {sorted(FIGURES)}.")
  flags.DEFINE_enum("scale", "quick", SCALES, "quick: fits a laptop CPU; paper: as in the "
                    "paper (10 seeds, every setting).")
  flags.DEFINE_string("workdir", "runs/reproduce", "Root of all outputs.")
  flags.DEFINE_bool("overwrite", False, "Delete a sweep's workdir that holds another config's "
                    "outputs (e.g. another scale's) instead of refusing it.")
  flags.DEFINE_enum("executor", "local", ("local", "slurm"), "local: run here, one sweep after "
                    "another; slurm: one sbatch job per sweep.")
  flags.DEFINE_list("slurm_args", ["--time=02:00:00", "--cpus-per-task=8"], "#SBATCH options "
                    "for --executor=slurm, comma-separated, each as --option=value.")


def main(argv):
  del argv
  args = flags.FLAGS
  for figure in selected(args.figures):
    workdir = os.path.join(args.workdir, figure)
    os.makedirs(workdir, exist_ok=True)
    if args.executor == "local":
      logging.info("=== %s (%s scale) -> %s", figure, args.scale, workdir)
      # A process per sweep: its own flags and compiled programs, the same as under Slurm.
      subprocess.run(command(figure, args.scale, workdir, args.overwrite), check=True)
      logging.info("=== %s done: figures (*.png) and metrics.csv in %s", figure,
                   os.path.abspath(workdir))
    else:
      script = os.path.join(workdir, "job.sbatch")
      with open(script, "w") as f:
        f.write(sbatch_script(figure, args.scale, workdir, args.slurm_args))
      if shutil.which("sbatch") is None:
        logging.warning("sbatch not found; submit %s on the cluster yourself.", script)
      else:
        subprocess.run(["sbatch", script], check=True)


if __name__ == "__main__":
  define_flags()
  app.run(main)
