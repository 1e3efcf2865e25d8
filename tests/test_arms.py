"""Tests of the plan's arm index (`amf/arms.py`, `experiments/arm_index.py`): an arm a finished process computed is read,
not run again, and reads the same rows the computation gives; and of the migration that writes
a setting added since into committed records (`launch/migrate.py`)."""
import json
import os

import pytest

from amf import arms, metrics
from configs import active_finetune as nn_config
from configs import integrator_gp as gp_config
from experiments import arm_index, integrator_gp
from launch import migrate


def _config(**overrides):
  config = gp_config.get_config("quick")
  config.update({**dict(num_seeds=2, ks=(1, 3), budget=3, eval_episodes=2), **overrides})
  return config


def test_an_arm_key_ignores_which_arms_run_beside_it_but_not_what_it_computes():
  key = lambda config, *arm: arms.key(arms.settings(config.to_dict()), *arm)[0]
  base = key(_config(), "amf", "importance", "rbf", "finite")
  assert key(_config(methods=("amf",)), "amf", "importance", "rbf", "finite") == base
  assert key(_config(budget=6), "amf", "importance", "rbf", "finite") != base
  assert key(_config(), "amf", "uniform", "rbf", "finite") != base
  # A cheap strategy scores nothing: its estimator, kernel and proposal do not matter.
  assert key(_config(), "uniform", "a", "b", "c") == key(_config(), "uniform", "x", "y", "z")
  assert key(_config(), "uniform", "a", "b", "c") != key(_config(), "rebalancing", "a", "b", "c")


def test_only_checkpointing_leaves_a_config_the_same_and_a_missing_setting_does_not():
  config = _config().to_dict()
  assert arms.canonical({**config, "checkpoint_every": 1}) == arms.canonical(config)
  # Runs per call change the rounding of wide calls (docs/studies.md): a process chunked
  # otherwise is another process, and its arms are other arms. A record without the setting
  # is another config too, until `launch.migrate` writes it in (next test).
  arm = lambda c: arms.key(arms.settings(c), "uniform", "a", "b", "c")[0]
  absent = {k: v for k, v in config.items() if k != "max_runs_per_call"}
  for other in ({**config, "max_runs_per_call": 8}, absent):
    assert arms.canonical(other) != arms.canonical(config) and arm(other) != arm(config)


def _process(root, name, spec, config, dropped, identity_dropped):
  """A finished process under `root` whose records were written before the keys `dropped`
  existed (its arm index entry before `identity_dropped` did): its config.json, launch.json,
  tables and indexed `uniform` arm. Returns its fresh config's text and arm key."""
  workdir = root / name
  workdir.mkdir(parents=True)
  fresh = config.to_dict()
  old = {k: v for k, v in json.loads(config.to_json()).items() if k not in dropped}
  (workdir / "config.json").write_text(json.dumps(old, indent=2))
  (workdir / "launch.json").write_text(json.dumps(
      {"argv": ["-m", "x", f"--config={spec}", "--config.budget=3"], "status": "done"}))
  for table in arms.TABLES:
    (workdir / f"{table}.csv").write_text("method,seed\nuniform,0\n")
  settings = {k: v for k, v in arms.settings(fresh).items() if k not in identity_dropped}
  arm_index.Folder(str(root / "arms"), str(workdir)).record(
      *arms.key(settings, "uniform", "", "", ""), "uniform")
  return config.to_json(indent=2), arms.key(arms.settings(fresh), "uniform", "", "", "")[0]


def test_a_migrated_record_is_the_record_a_fresh_process_writes_and_a_second_run_changes_nothing(
    tmp_path):
  added = migrate.additions(migrate.ADDED)
  nn = nn_config.get_config("integrator,quick")
  nn.budget = 3
  assert {k: nn[k] for k in added} == added  # what the old code computed
  # The NN process predates the head and batched evaluation; arm entries predate every added
  # key. The GP config has none but max_runs_per_call, which its record already holds.
  texts = {"nn": _process(tmp_path, "s/nn", "configs/active_finetune.py:integrator,quick", nn,
                          ("head", "eval_episode_batch"), tuple(added)),
           "gp": _process(tmp_path, "s/gp", "configs/integrator_gp.py:quick", _config(), (),
                          tuple(added))}
  (tmp_path / "s" / "manual").mkdir()  # no launch.json says which config it ran
  (tmp_path / "s" / "manual" / "config.json").write_text("{}")
  counts = migrate.migrate(str(tmp_path), added)
  assert counts == {"config.json": 1, "arm entries": 2, "arm keys changed": 2,
                    "duplicate arm entries dropped": 0, "eval_episode_batch": 1, "head": 1,
                    "max_runs_per_call": 0, "left as is": [os.path.join("s", "manual")]}
  index = arm_index.Folder(str(tmp_path / "arms"))
  for name, (text, arm_key) in texts.items():
    assert (tmp_path / "s" / name / "config.json").read_text() == text
    assert index.locate(arm_key) == (str(tmp_path / "s" / name), "uniform")
  assert sorted(os.listdir(tmp_path / "arms")) == sorted(f"{k}.json" for _, k in texts.values())
  files = {p: p.read_text() for p in tmp_path.rglob("*.json")}
  assert not any(v for k, v in migrate.migrate(str(tmp_path), added).items() if k != "left as is")
  assert {p: p.read_text() for p in tmp_path.rglob("*.json")} == files


def test_a_migrated_setting_has_its_config_type_and_place():
  record = {"a": 1, "c": {"y": 2}}
  schema = {"a": 0, "b": 0.5, "c": {"x": 0, "y": 0}, "d": "s"}
  assert migrate.add(record, schema, "b", 1) and migrate.add(record, schema, "c.x", 3)
  assert not migrate.add(record, schema, "e", 1) and not migrate.add(record, schema, "b", 2.0)
  assert json.dumps(record) == '{"a": 1, "b": 1.0, "c": {"x": 3, "y": 2}}'
  with pytest.raises(ValueError, match="the config's d is a str"):
    migrate.add(record, schema, "d", 1)
  assert migrate.additions(['h="f"', "n=0", "s=word"]) == {"h": "f", "n": 0, "s": "word"}


@pytest.mark.slow  # three small sweeps
def test_a_second_process_reads_the_shared_arm_with_the_rows_it_would_compute(tmp_path):
  store = str(tmp_path / "arms")
  integrator_gp.run(_config(methods=("amf", "uniform")), str(tmp_path / "a"), arms=store)
  assert len(os.listdir(store)) == 2  # amf and uniform indexed
  shared = integrator_gp.run(_config(methods=("uniform", "rebalancing")), str(tmp_path / "b"),
                             arms=store)
  alone = integrator_gp.run(_config(methods=("uniform", "rebalancing")), str(tmp_path / "c"))
  # b ran only rebalancing (its checkpoints name the subset), and reads uniform's rows.
  assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == [
      "pretrained", "uniform+rebalancing-rebalancing"]
  assert shared == alone
  first = [r for r in metrics.read_csv(tmp_path / "a" / "metrics.csv") if r["method"] == "uniform"]
  assert [r for r in shared if r["method"] == "uniform"] == first
  assert len(os.listdir(store)) == 3  # rebalancing indexed too
  # A process whose every arm is indexed computes nothing, not even the pre-training.
  read = integrator_gp.run(_config(methods=("rebalancing", "amf")), str(tmp_path / "d"),
                           arms=store)
  assert not os.path.exists(tmp_path / "d" / "checkpoints")
  assert sorted(read, key=str) == sorted(
      [r for r in shared if r["method"] == "rebalancing"]
      + [r for r in metrics.read_csv(tmp_path / "a" / "metrics.csv") if r["method"] == "amf"],
      key=str)


def test_an_index_entry_is_found_only_while_its_process_holds_the_arms_settings(tmp_path):
  config, store = _config(), str(tmp_path / "arms")
  arm_key, identity = arms.key(arms.settings(config.to_dict()), "uniform", "", "", "")
  workdir = tmp_path / "p"
  workdir.mkdir()
  (workdir / "config.json").write_text(config.to_json())
  index = arm_index.Folder(store, str(workdir))
  index.record(arm_key, identity, "uniform")
  assert index.locate(arm_key) is None  # its tables are not written yet
  for table in arms.TABLES:
    (workdir / f"{table}.csv").write_text("method,seed\nuniform,0\nuniform,1\n")
  assert index.locate(arm_key) == (str(workdir), "uniform")
  assert [r["method"] for r in index.find(arm_key, "base")["metrics"]] == ["base", "base"]
  config.budget += 1  # a later config's outputs in the same workdir
  (workdir / "config.json").write_text(config.to_json())
  assert index.locate(arm_key) is None and index.find(arm_key, "base") is None
