"""The studies (`configs/studies`) and their processes (`launch/studies.py`): every study loads
at both scales, its overrides are keys of its experiment's config, and the command line a
process gets parses back to the config the launcher checked."""
import pytest
from absl import flags
from ml_collections import config_flags

from configs import studies as study_configs
from configs.studies import pretraining_mix
from launch import studies

ALL = [(name, scale) for name in study_configs.STUDIES for scale in study_configs.SCALES]


@pytest.mark.parametrize("name,scale", ALL)
def test_every_study_names_its_reference_and_its_overrides_exist(name, scale):
  study = study_configs.get(name, scale)
  studies.check(study)
  assert study.scale == scale and study.reference and study.metrics
  processes = studies.processes(study)
  assert processes and len({r.path for r in processes}) == len(processes)
  for process in processes:
    config = studies.experiment_config(process)
    assert config.scale == scale
    for key, value in process.overrides.items():
      got = config
      for part in key.split("."):
        got = got[part]
      assert got == value, (process.path, key)


@pytest.mark.parametrize("name,scale", ALL)
def test_the_command_line_parses_back_to_the_checked_config(name, scale):
  for process in studies.processes(study_configs.get(name, scale)):
    argv = studies.command(process, "/tmp/root")
    values = flags.FlagValues()
    argv = [argv[0], *argv[3:]]
    config_flags.DEFINE_config_file("config", flag_values=values, sys_argv=argv)
    flags.DEFINE_string("workdir", "", "", flag_values=values)
    flags.DEFINE_string("arms", "", "", flag_values=values)
    values(argv)
    assert values.config.to_dict() == studies.experiment_config(process).to_dict(), process.path
    assert values.workdir == f"/tmp/root/{process.path}" and values.arms == "/tmp/root/arms"


def test_a_studys_processes_are_separate_and_its_mixes_and_arms_are_not():
  batch = studies.processes(study_configs.get("batch_size", "quick"))
  assert [(r.tag, r.overrides["batch_size"]) for r in batch] == [
      (f"b{b}", b) for b in (1, 2, 4, 8)]
  (kernels,) = studies.processes(study_configs.get("kernels", "quick"))
  assert len(kernels.overrides["kernels"]) == 8 and kernels.path == "kernels/integrator_nn"


def test_pretraining_mixes_cover_a_quarter_half_and_three_quarters():
  assert pretraining_mix.mixes(8)[-3:] == ("subset:2", "subset:4", "subset:6")
  assert pretraining_mix.mixes(12)[1:4] == ("skewed:0.5", "skewed:1", "skewed:2")


def test_pushers_pretraining_mix_runs_one_process_per_mix_and_reachers_one_in_all():
  by_env = {}
  for process in studies.processes(study_configs.get("pretraining_mix", "paper")):
    by_env.setdefault(process.env, []).append(process)
  half = {"subset:2": "subset"}  # spelled as the studies that computed its arms spell it
  assert sorted(p.overrides["mixes"] for p in by_env["pusher"]) == sorted(
      (half.get(mix, mix),) for mix in pretraining_mix.mixes(4))
  assert "pretraining_mix/pusher/skewed-0_5" in {p.path for p in by_env["pusher"]}
  (reacher,) = by_env["reacher"]
  assert reacher.overrides["mixes"] == pretraining_mix.mixes(8)
  assert study_configs.get("pretraining_mix", "paper").envs.pusher.shards


def test_unknown_and_misnamed_studies_are_refused():
  with pytest.raises(ValueError, match="Unknown study 'kernel'"):
    study_configs.get("kernel", "quick")
  with pytest.raises(ValueError, match="Unknown scale"):
    study_configs.get("kernels", "huge")
  study = study_configs.get("batch_size", "quick")
  study.reference = {"process": "b3"}
  with pytest.raises(ValueError, match="reference process 'b3'"):
    studies.check(study)
  study.reference = {"seed": 0}
  with pytest.raises(ValueError, match="reference must set"):
    studies.check(study)


def test_a_bad_override_is_refused_naming_the_process():
  study = study_configs.get("kernels", "quick")
  study.envs.integrator_nn.overrides.kernels = ("loss_gradient", "gradient")
  (process,) = studies.processes(study)
  with pytest.raises(ValueError, match="kernels/integrator_nn: .*network kernel 'gradient'"):
    studies.validate(process)
  study.envs.integrator_nn.overrides.nonsense = 1
  (process,) = studies.processes(study)
  with pytest.raises(ValueError, match="bad override"):
    studies.experiment_config(process)
