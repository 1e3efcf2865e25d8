"""`amf.export`: a run of an experiment, at any round, as `amf.suggest`'s inputs; `amf.suggest`
on them asks for what the loop asked for next. Keeping every checkpoint changes no table."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from amf import checkpoint, export, metrics, suggest
from configs import active_finetune as config_lib
from experiments import active_finetune

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = ("metrics.csv", "per_task.csv", "allocations.csv")


def _tiny():
  """Five rounds, checkpointed after rounds 2, 4 and 5: rounds 1 and 3 lie between two."""
  c = config_lib.get_config("integrator,quick")
  c.update(dict(num_seeds=2, mixes=("subset",), budget=5, batch_size=1, pretrain_size=4,
                pretrain_steps=100, finetune_steps=20, hidden=(16,), eval_episodes=2,
                methods=("amf", "uniform"), checkpoint_every=2, kernels=("last_layer",)))
  return c


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("experiment") / "run"
  active_finetune.run(_tiny(), str(workdir))
  return workdir


def _asked_by_the_loop(workdir, method, seed, round_):
  """The task ids the loop asked for in round `round_ + 1` (allocations.csv)."""
  rows = metrics.read_csv(os.path.join(workdir, "allocations.csv"))
  return [r["task"] for r in rows
          if (r["method"], r["seed"], r["round"]) == (method, seed, round_ + 1)]


def _suggest(out):
  policy = suggest.load_policy(out / "policy")
  question, targets, env = suggest.load_question(out / "tasks.json", policy.env,
                                                 jax.random.PRNGKey(0), policy.question)
  return suggest.suggest(env, policy.learner, policy.state, suggest.load_demos(out / "demos.npz"),
                         policy.selection_key, question, targets)


@pytest.mark.slow  # runs the experiment, then suggests at three rounds
def test_export_then_suggest_asks_for_what_the_loop_asked_for(experiment, tmp_path):
  steps = checkpoint.Progress(str(experiment / "checkpoints" / "amf")).steps()
  assert steps == [2, 4, 5]  # every chunk's checkpoint is kept
  for seed, round_ in ((1, 0), (1, 1), (0, 3), (0, 4)):  # pre-trained, re-advanced, restored
    out = tmp_path / f"seed{seed}_round{round_}"
    record = export.export(str(experiment), "amf", seed, round_, str(out))
    loop = _asked_by_the_loop(experiment, "amf", seed, round_)
    assert record["loop_asked"] == loop and record["demonstrations"] == 4 + round_
    s = _suggest(out)
    assert np.asarray(s.ids).tolist() == loop, (seed, round_)


@pytest.mark.slow  # runs the experiment twice
def test_keeping_every_checkpoint_changes_no_table(experiment, tmp_path, monkeypatch):
  keep_two = checkpoint.Progress
  monkeypatch.setattr(checkpoint, "Progress", lambda d, max_to_keep=2: keep_two(d, 2))
  active_finetune.run(_tiny(), str(tmp_path / "run"))
  assert keep_two(str(tmp_path / "run" / "checkpoints" / "amf")).steps() == [4, 5]
  for name in TABLES:
    assert (tmp_path / "run" / name).read_bytes() == (experiment / name).read_bytes(), name


@pytest.mark.slow  # subprocesses
def test_the_export_command_then_the_suggest_command(experiment, tmp_path):
  out = tmp_path / "export"
  run = lambda *args: subprocess.run([sys.executable, "-m", *args], cwd=ROOT,
                                     capture_output=True, text=True, timeout=600)
  done = run("amf.export", f"--workdir={experiment}", "--method=uniform", "--seed=1",
             "--round=3", f"--out={out}")
  assert done.returncode == 0, done.stderr[-2000:]
  assert "the loop asked for" in done.stdout
  answer = run("amf.suggest", f"--policy={out / 'policy'}", f"--demos={out / 'demos.npz'}",
               f"--tasks={out / 'tasks.json'}", f"--out={out / 'answer'}")
  assert answer.returncode == 0, answer.stderr[-2000:]
  assert (out / "answer" / "suggestion.json").exists()
  again = run("amf.export", f"--workdir={experiment}", "--method=amf", "--seed=1",
              "--round=9", f"--out={tmp_path / 'bad'}")
  assert again.returncode == 2 and "round must be in 0..5, got 9" in again.stderr
  assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("args,match", [
    (dict(method="greedy"), r"no method 'greedy' in this experiment; choose one of \['amf', "),
    (dict(seed=7), "no run with variant 'subset.*' and seed 7"),
    (dict(variant="uniform"), "no run with variant 'uniform'"),
])
def test_bad_exports_are_refused(tmp_path, args, match):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text(_tiny().to_json())
  with pytest.raises(ValueError, match=match):
    export.export(str(workdir), **{**dict(method="amf", seed=0, round_=1,
                                          out=str(tmp_path / "out")), **args})
  assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a Meta-World run (MuJoCo on the host), then suggests at two rounds
def test_a_metaworld_policy_and_its_demonstrations_get_the_loops_answer(tmp_path):
  c = config_lib.get_config("metaworld,quick")
  c.update(dict(num_seeds=1, mixes=("subset",), budget=2, batch_size=1, pretrain_size=4,
                pretrain_steps=50, finetune_steps=10, hidden=(16,), eval_episodes=1,
                methods=("amf",), checkpoint_every=1, kernels=("last_layer",)))
  c.env_kwargs.horizon = 20
  active_finetune.run(c, str(tmp_path / "run"))
  for round_ in (0, 1):
    out = tmp_path / f"round{round_}"
    record = export.export(str(tmp_path / "run"), "amf", 0, round_, str(out))
    assert type(suggest.load_policy(out / "policy").env).__name__ == "MetaWorld"
    assert np.asarray(_suggest(out).ids).tolist() == record["loop_asked"] == _asked_by_the_loop(
        tmp_path / "run", "amf", 0, round_)
