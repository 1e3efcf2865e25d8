"""`amf.suggest`: the loop's own selection on a lab's policy and data, its files and command.

Equivalence: a policy and demonstrations written by the active loop after a round, asked
through `suggest` (in-process and through the command), give exactly the tasks the loop asked
for in the next round — on the integrator (finite set and continuous space) and on reacher.
"""
import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import data, envs, nn_learner, suggest
from amf.active import LoopConfig, make_loop, round_streams
from configs import active_finetune

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(env_name, **overrides):
  c = active_finetune.get_config(f"{env_name},quick")
  c.update({**dict(pretrain_steps=200, finetune_steps=100, hidden=(16, 16),
                   kernels=("loss_gradient", "last_layer")), **overrides})
  return c


def _loop_two_rounds(env_name, key=0, **loop_settings):
  """The loop's carry after one round (a policy and data a lab would have) and after two."""
  c = _config(env_name)
  env = envs.make(c.env, **c.env_kwargs)
  learner = nn_learner.make(nn_learner.Spec.from_config(c), env)
  settings = dict(strategies=("amf",), estimators=("importance",), pretrain_size=4, budget=2,
                  batch_size=1, occupancy_samples=2, eval_episodes=2, stride=2)
  settings.update(loop_settings)
  loop = make_loop(env, learner, LoopConfig(**settings))
  advance = jax.jit(loop.advance, static_argnums=1)  # one program for both rounds
  first = advance(
      jax.jit(loop.init)(jax.random.PRNGKey(key), data.mix_weights("subset", env.num_tasks, k=2)),
      1)
  second = advance(first, 1)
  return c, env, learner, first, second


@pytest.fixture(scope="module")
def integrator_round():
  return _loop_two_rounds("integrator")


def _question(**kw):
  return suggest.Question(**{**dict(estimator="importance", occupancy_samples=2, stride=2), **kw})


def test_suggest_asks_for_what_the_loop_asked_for(integrator_round):
  c, env, learner, first, second = integrator_round
  key = round_streams(first.key)["selection"]
  s = suggest.suggest(env, learner, first.learner, first.data, key, _question())
  np.testing.assert_array_equal(s.ids, second.asked[1])
  # Compiled once per process: the same learner and question with new data reuse the program.
  compiled = suggest._answer._cache_size()
  again = suggest.suggest(env, learner, first.learner, second.data, key, _question())
  assert suggest._answer._cache_size() == compiled
  assert again.scores.shape == s.scores.shape
  np.testing.assert_allclose(s.tasks, second.data.task[5:6])
  np.testing.assert_array_equal(s.candidates.tasks[s.chosen], s.tasks)
  # AMF asks for a task of maximal alpha; the batch teaches: no target's variance grows and
  # the asked task's drops.
  assert s.scores[s.ids[0]] >= s.scores.max() * (1 - 1e-5)
  assert np.all(s.variance_after <= s.variance_before * (1 + 1e-4))
  assert s.variance_after[s.ids[0]] < 0.9 * s.variance_before[s.ids[0]]
  np.testing.assert_allclose(s.target_weights.sum(), 1.0, rtol=1e-6)


@pytest.mark.slow  # compiles a loop, then runs the command in a subprocess
def test_the_command_on_the_loops_files_asks_for_the_same_task(integrator_round, tmp_path):
  c, env, learner, first, second = integrator_round
  key = round_streams(first.key)["selection"]
  suggest.save_policy(tmp_path / "policy", c.env, c.env_kwargs, c, first.learner, key)
  suggest.save_demos(tmp_path / "demos.npz", first.data)
  (tmp_path / "tasks.json").write_text(json.dumps(dict(estimator="importance",
                                                       occupancy_samples=2, stride=2)))
  # In-process from the files: the restored policy and data give the same answer.
  policy = suggest.load_policy(tmp_path / "policy")
  demos = suggest.load_demos(tmp_path / "demos.npz")
  question, _, _ = suggest.load_question(tmp_path / "tasks.json", policy.env, key,
                                         policy.question, batch_size=1)
  s = suggest.suggest(policy.env, policy.learner, policy.state, demos, policy.selection_key,
                      question)
  np.testing.assert_array_equal(s.ids, second.asked[1])
  out = subprocess.run(
      [sys.executable, "-m", "amf.suggest", f"--policy={tmp_path / 'policy'}",
       f"--demos={tmp_path / 'demos.npz'}", f"--tasks={tmp_path / 'tasks.json'}", "--batch=1",
       f"--out={tmp_path / 'out'}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "Ask for, in this order" in out.stdout
  result = json.loads((tmp_path / "out" / "suggestion.json").read_text())
  assert [a["id"] for a in result["asked"]] == np.asarray(second.asked[1]).tolist()
  assert [result["candidates"][a["candidate"]]["id"] for a in result["asked"]] == [
      a["id"] for a in result["asked"]]
  assert (tmp_path / "out" / "suggestion.png").stat().st_size > 10_000
  # The answer records every setting used: the question's, resolved (the learner's kernel).
  assert result["settings"] == json.loads(json.dumps(dataclasses.replace(
      question, kernel=learner.kernels[0]).settings()))
  assert set(result["settings"]) >= {"batch_size", "stride", "occupancy_samples", "proposal",
                                     "estimators", "kernels", "ascent", "critic"}


@pytest.mark.slow  # compiles a continuous loop
def test_suggest_in_a_continuous_space_asks_for_what_the_loop_asked_for():
  region = ((1.7, 2.4),)
  c, env, learner, first, second = _loop_two_rounds(
      "integrator", key=1, estimators=("uniform",), task_space="continuous",
      target_region=region, num_targets=4, proposal="random", num_candidates=6)
  key = round_streams(first.key)["selection"]
  s = suggest.suggest(env, learner, first.learner, first.data, key,
                      suggest.Question(estimator="uniform", occupancy_samples=2, stride=2,
                                       task_space="continuous", proposal="random",
                                       num_candidates=6, target_region=region),
                      targets=first.targets)
  np.testing.assert_allclose(s.tasks, second.data.task[5:6], rtol=1e-6)
  assert s.candidates.tasks.shape == (6, 1)


@pytest.mark.slow  # brax reacher: pre-training, one round, the suggestion
def test_suggest_on_reacher_asks_for_what_the_loop_asked_for():
  c, env, learner, first, second = _loop_two_rounds("reacher", stride=10)
  key = round_streams(first.key)["selection"]
  s = suggest.suggest(env, learner, first.learner, first.data, key,
                      _question(stride=10, batch_size=1))
  np.testing.assert_array_equal(s.ids, second.asked[1])


# Bad input: a one-line ValueError before anything compiles.

@pytest.fixture(scope="module")
def small():
  c = _config("integrator", pretrain_steps=10)
  env = envs.make(c.env, **c.env_kwargs)
  learner = nn_learner.make(nn_learner.Spec.from_config(c), env)
  demos = data.concat(data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 1, 2])),
                      data.empty(env, 1))
  return c, env, learner, demos


@pytest.mark.parametrize("change,match", [
    (dict(obs=lambda d: d.obs[:, :, :1]), r"obs has shape \(4, 8, 1\), expected \('M', 8, 2\)"),
    (dict(actions=lambda d: d.actions[:3]), "actions has shape"),
    (dict(task=lambda d: d.task.at[0, 0].set(9.0)), "outside the task space"),
    (dict(mask=lambda d: jnp.zeros_like(d.mask)), "the set is empty"),
    (dict(obs=lambda d: d.obs.at[0, 0, 0].set(jnp.nan)), "obs has NaN"),
    (dict(task_id=lambda d: d.task_id.at[1].set(99)), r"task_id 99 \(episode 1\) is not a task"),
    (dict(task_id=lambda d: d.task_id.at[2].set(5)), "episode 2 has task_id 5 but task"),
])
def test_bad_demonstrations_are_refused(small, change, match):
  c, env, learner, demos = small
  bad = demos._replace(**{k: f(demos) for k, f in change.items()})
  with pytest.raises(ValueError, match=match):
    suggest.check(env, learner, bad, suggest.Question())


@pytest.mark.parametrize("question,targets,match", [
    (dict(kernel="ntk"), None, "Unknown kernel 'ntk' for this policy"),
    (dict(estimator="guess"), None, "occupancy estimator 'guess'"),
    (dict(batch_size=0), None, "batch_size must be a whole number >= 1, got 0"),
    (dict(stride=0), None, "stride must be a whole number >= 1"),
    (dict(occupancy_samples=0), None, "occupancy_samples must be a whole number >= 1"),
    (dict(task_space="continuous", proposal="random", num_candidates=4), None,
     "needs target tasks of shape"),
    (dict(task_space="continuous", proposal="random", num_candidates=4), np.array([[9.0]]),
     "outside the task space"),
    (dict(proposal="nearest"), None, "proposal 'nearest'"),
    (dict(target_tasks=(0, 1), target_mass=(1.0,)), None, "target_mass needs one"),
    (dict(target_mass=(1.0,)), None, "target_mass needs one weight per target task"),
])
def test_bad_questions_are_refused(small, question, targets, match):
  c, env, learner, demos = small
  with pytest.raises(ValueError, match=match):
    suggest.check(env, learner, demos, suggest.Question(**question), targets)


@pytest.mark.parametrize("spec,match", [
    (dict(target=[1]), r"unknown keys \['target'\]"),
    (dict(targets=[1, 40]), r"target ids \[40\]"),
    (dict(targets=[1, 1]), "targets must be distinct task ids"),
    (dict(targets=["a"]), "targets must be distinct task ids"),
    (dict(space="continuous"), "needs targets"),
    (dict(space="cube"), "Unknown task space 'cube'"),
    (dict(proposal="nearest"), "proposal 'nearest'"),
    (dict(estimator="guess"), "occupancy estimator 'guess'"),
    (dict(target_region=[[0, 1]]), "target_region is for a continuous space"),
    (dict(batch_size="four"), "batch_size must be a whole number, got 'four'"),
    (dict(batch_size=2.5), "batch_size must be a whole number"),
    (dict(batch_size=0), "batch_size must be at least 1, got 0"),
    (dict(stride=0), "stride must be at least 1"),
    (dict(occupancy_samples=0), "occupancy_samples must be at least 1"),
    (dict(num_candidates=-1), "num_candidates must be at least 0"),
    (dict(kernel=3), "kernel must be a string"),
    (dict(ascent=dict(steps="x")), "ascent: steps must be a whole number"),
    (dict(ascent=dict(rate=1)), r"ascent: unknown keys \['rate'\]"),
    (dict(targets=[0, 1], weights=[1]), r"weights needs one non-negative weight per target "
                                        r"task \(2"),
    (dict(weights=[1, 2]), r"weights needs one .* \(12: every task\)"),
    (dict(weights=["x"]), "weights must be a list of numbers"),
    (dict(space="continuous", targets=[[1.0]], weights=[1]), "weights are mu on a finite set"),
    (dict(space="continuous", targets=[1.0]), "targets must be a list of tasks"),
    (dict(space="continuous", target_region=[[0, 99]]), "target_region: Region bounds"),
    ([1, 2], "holds a list, not a JSON object"),
])
def test_bad_question_files_are_refused(small, tmp_path, spec, match):
  c, env, learner, demos = small
  (tmp_path / "q.json").write_text(json.dumps(spec))
  with pytest.raises(ValueError, match=match) as e:
    suggest.load_question(tmp_path / "q.json", env, jax.random.PRNGKey(0))
  assert str(tmp_path / "q.json") in str(e.value)  # names the file
  assert "target_mass" not in str(e.value) and "eval_episodes" not in str(e.value)


def test_a_garbage_question_file_is_refused_naming_it(small, tmp_path):
  c, env, learner, demos = small
  (tmp_path / "q.json").write_text("{not json")
  with pytest.raises(ValueError, match=f"tasks: cannot read {tmp_path / 'q.json'} as JSON"):
    suggest.load_question(tmp_path / "q.json", env, jax.random.PRNGKey(0))


def test_defaults_are_the_loops():
  """`{}` asks the loop's question: reacher's study config scores every 5th state."""
  config = active_finetune.get_config("reacher")
  q = suggest.Question.from_config(config)
  loop = LoopConfig.from_config(config, ("amf",))
  assert (q.stride, q.occupancy_samples, q.batch_size) == (
      loop.stride, loop.occupancy_samples, loop.batch_size) == (5, 2, 1)
  assert (q.estimator, q.kernel) == (config.estimators[0], config.kernels[0])
  selection = lambda c: {k: getattr(c, k) for k in (
      "estimators", "stride", "occupancy_samples", "proposal", "num_candidates", "ascent",
      "critic", "task_space", "target_tasks", "target_mass", "target_region")}
  assert selection(q.loop_config(16, 8)) == selection(loop)
  # Without a config: the loop's own defaults, not copies.
  assert selection(suggest.Question().loop_config(16, 8)) == selection(LoopConfig())
  assert suggest.Question.from_config(q.settings()) == q  # what policy.json records reads back


def test_the_question_file_overrides_the_defaults(small, tmp_path):
  c, env, learner, demos = small
  defaults = suggest.Question.from_config(active_finetune.get_config("reacher"))
  (tmp_path / "q.json").write_text("{}")
  q, _, _ = suggest.load_question(tmp_path / "q.json", env, jax.random.PRNGKey(0), defaults)
  assert q == defaults
  (tmp_path / "q.json").write_text(json.dumps(dict(stride=2, targets=[1, 2], weights=[3, 1])))
  q, _, _ = suggest.load_question(tmp_path / "q.json", env, jax.random.PRNGKey(0), defaults,
                               batch_size=3)
  assert q == dataclasses.replace(defaults, stride=2, target_tasks=(1, 2),
                                  target_mass=(3.0, 1.0), batch_size=3)


def test_demonstrations_that_do_not_read_are_refused_naming_the_file(tmp_path):
  np.savez(tmp_path / "pickled.npz", obs=np.array([{"a": 1}], dtype=object),
           actions=np.zeros(1), task=np.zeros(1))
  with pytest.raises(ValueError, match=f"cannot read {tmp_path / 'pickled.npz'} as a .npz"):
    suggest.load_demos(tmp_path / "pickled.npz")
  (tmp_path / "garbage.npz").write_bytes(b"not a zip")
  with pytest.raises(ValueError, match=f"cannot read {tmp_path / 'garbage.npz'}"):
    suggest.load_demos(tmp_path / "garbage.npz")
  np.savez(tmp_path / "text.npz", obs=np.array(["a"]), actions=np.zeros(1), task=np.zeros(1))
  with pytest.raises(ValueError, match="text.npz holds arrays that are not numbers"):
    suggest.load_demos(tmp_path / "text.npz")


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
  """A saved policy (the integrator's, briefly trained) and its demonstrations."""
  c, env, learner, demos = small
  path = tmp_path_factory.mktemp("saved")
  state = jax.jit(learner.init)(demos, jax.random.PRNGKey(0))
  suggest.save_policy(path / "policy", c.env, c.env_kwargs, c, state)
  suggest.save_demos(path / "demos.npz", demos)
  return path


def _edited_policy(saved, tmp_path, edit):
  """A copy of the saved policy with `edit(spec)` applied to its policy.json."""
  import shutil
  shutil.copytree(saved / "policy", tmp_path / "policy")
  spec = json.loads((tmp_path / "policy" / "policy.json").read_text())
  edit(spec)
  (tmp_path / "policy" / "policy.json").write_text(json.dumps(spec))
  return tmp_path / "policy"


def test_a_saved_policy_reads_back_with_the_loops_defaults(small, saved):
  c, env, learner, demos = small
  policy = suggest.load_policy(saved / "policy")
  assert policy.question == suggest.Question.from_config(c)
  assert policy.question.stride == c.stride and policy.selection_key is None


@pytest.mark.parametrize("edit,match", [
    (lambda spec: spec["learner"].update(hidden=[8, 8]),
     "does not fit the learner .*policy.json describes"),
    (lambda spec: spec["learner"].update(hidden="wide"),
     "its environment or learner does not build"),
    (lambda spec: spec["learner"].pop("noise"),
     r"does not build \(ValueError: a learner needs the field\(s\) \['noise'\]\)"),
    (lambda spec: spec.pop("env"), r"lacks \['env'\]"),
    (lambda spec: spec.update(env="walker"), "Unknown environment 'walker'"),
    (lambda spec: spec["env_kwargs"].update(colour=1), "its environment or learner does not build"),
])
def test_policies_that_do_not_describe_their_state_are_refused(saved, tmp_path, edit, match):
  with pytest.raises(ValueError, match=match) as e:
    suggest.load_policy(_edited_policy(saved, tmp_path, edit))
  assert "policy.json" in str(e.value) and "\n" not in str(e.value)


def test_a_garbage_or_stateless_policy_is_refused(saved, tmp_path):
  path = _edited_policy(saved, tmp_path, lambda spec: None)
  (path / "policy.json").write_text("\x00garbage")
  with pytest.raises(ValueError, match=f"policy: cannot read {path / 'policy.json'} as JSON"):
    suggest.load_policy(path)
  (path / "policy.json").write_text((saved / "policy" / "policy.json").read_text())
  import shutil
  shutil.rmtree(path / "state")
  with pytest.raises(ValueError, match=f"the learner state {path / 'state'} is missing"):
    suggest.load_policy(path)


def test_a_finite_set_edited_in_policy_json_is_refused(small, saved, tmp_path):
  """`num_tasks` edited: the demonstrations' task ids no longer name their tasks."""
  c, env, learner, demos = small
  policy = suggest.load_policy(_edited_policy(
      saved, tmp_path, lambda spec: spec["env_kwargs"].update(num_tasks=16)))
  with pytest.raises(ValueError, match="has task_id 1 but task"):
    suggest.check(policy.env, policy.learner, suggest.load_demos(saved / "demos.npz"),
                  policy.question)


def test_a_batch_larger_than_the_candidates_is_stated(small):
  c, env, learner, demos = small
  note = suggest.repeats(env, suggest.Question(batch_size=20))
  assert "a batch of 20 from 12 distinct candidates" in note
  assert suggest.repeats(env, suggest.Question(batch_size=20, proposal="random:32")) == ""
  assert suggest.repeats(env, suggest.Question(batch_size=12)) == ""


def test_question_files_give_mu_and_continuous_targets(small, tmp_path):
  c, env, learner, demos = small
  (tmp_path / "q.json").write_text(json.dumps(dict(targets=[3, 5], weights=[3, 1], batch_size=2)))
  q, targets, _ = suggest.load_question(tmp_path / "q.json", env, jax.random.PRNGKey(0))
  assert (q.target_tasks, q.target_mass, q.batch_size, targets) == ((3, 5), (3.0, 1.0), 2, None)
  (tmp_path / "c.json").write_text(json.dumps(dict(space="continuous", proposal="continuous",
                                                   target_region=[[1.0, 2.0]], num_targets=5)))
  q, targets, _ = suggest.load_question(tmp_path / "c.json", env, jax.random.PRNGKey(0))
  assert q.task_space == "continuous" and targets.shape == (5, 1)
  assert np.all((targets >= 1.0) & (targets <= 2.0))


def test_demonstrations_from_a_directory_of_episodes(small, tmp_path):
  c, env, learner, demos = small
  for i in range(3):
    np.savez(tmp_path / f"ep{i}.npz", obs=demos.obs[i], actions=demos.actions[i],
             task=demos.task[i])
  loaded = suggest.load_demos(tmp_path)
  np.testing.assert_allclose(loaded.obs, demos.obs[:3])
  assert loaded.mask.all() and np.all(loaded.task_id == -1)
  # Episodes of different lengths: padded to the longest (or the horizon), steps marked.
  np.savez(tmp_path / "ep3.npz", obs=demos.obs[0, :4], actions=demos.actions[0, :4],
           task=demos.task[0])
  loaded = suggest.load_demos(tmp_path)
  np.testing.assert_array_equal(loaded.steps, np.arange(8) < np.array([8, 8, 8, 4])[:, None])
  np.testing.assert_allclose(loaded.obs[3], np.concatenate([demos.obs[0, :4], np.zeros((4, 2))]))
  np.savez(tmp_path / "ep3.npz", obs=demos.obs[0, :4], actions=demos.actions[0],
           task=demos.task[0])
  with pytest.raises(ValueError, match=r"ep3.npz has 4 observations but 8 actions"):
    suggest.load_demos(tmp_path)
  with pytest.raises(ValueError, match="neither a .npz or HDF5 file nor a directory"):
    suggest.load_demos(tmp_path / "missing.npz")


def _recorded(demos, lengths, garbage):
  """`demos` with episode `i`'s steps from `lengths[i]` on unrecorded, holding `garbage`."""
  steps = np.arange(demos.obs.shape[1]) < np.asarray(lengths)[:, None]
  fill = lambda x: jnp.where(steps[..., None], x, garbage)
  return demos._replace(obs=fill(demos.obs), actions=fill(demos.actions), steps=steps)


def test_episodes_of_different_lengths_are_asked_about_on_their_recorded_steps(small):
  """Episodes of lengths [H, H - 3, H]: what the unrecorded steps hold (zeros, NaN, 1e4)
  changes no score; episodes all cut to H - 3 steps, padded or not, get the answer a policy of
  horizon H - 3 gives on them without any step mask."""
  c, env, learner, demos = small
  state = jax.jit(learner.init)(demos, jax.random.PRNGKey(0))
  question, key, h = _question(stride=2), jax.random.PRNGKey(3), env.horizon
  ask = lambda d, env=env, learner=learner: suggest.suggest(env, learner, state, d, key,
                                                            question)
  # Float tolerance: the unmasked answer factorises smaller matrices.
  same = lambda a, b: (np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-7),
                       np.testing.assert_allclose(a.variance_after, b.variance_after,
                                                  rtol=1e-4, atol=1e-7),
                       np.testing.assert_array_equal(a.ids, b.ids))
  zeros, nans, huge = (ask(_recorded(demos, [h, h - 3, h, h], g)) for g in (0.0, np.nan, 1e4))
  for other in (nans, huge):  # the padding is zeroed before any use: the very same numbers
    jax.tree.map(np.testing.assert_array_equal, other, zeros)
  assert np.isfinite(zeros.scores).all() and np.ptp(zeros.scores) > 0
  short_env = envs.make(c.env, **{**c.env_kwargs, "horizon": h - 3})
  cut = demos._replace(obs=demos.obs[:, :h - 3], actions=demos.actions[:, :h - 3])
  unmasked = ask(cut, short_env, nn_learner.make(nn_learner.Spec.from_config(c), short_env))
  same(ask(_recorded(demos, [h - 3] * 4, np.nan)), unmasked)
  same(ask(cut), unmasked)  # (M, H - 3) arrays: `suggest` pads them to the horizon


def _command(tmp_path, policy, demos, tasks, *flags, timeout=300):
  return subprocess.run(
      [sys.executable, "-m", "amf.suggest", f"--policy={policy}", f"--demos={demos}",
       f"--tasks={tasks}", *flags], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow  # subprocesses
def test_the_command_refuses_in_one_line_and_writes_nothing(small, saved, tmp_path):
  c, env, learner, demos = small
  suggest.save_demos(tmp_path / "empty.npz", demos._replace(mask=jnp.zeros_like(demos.mask)))
  (tmp_path / "tasks.json").write_text("{}")
  (tmp_path / "four.json").write_text(json.dumps(dict(batch_size="four")))
  (tmp_path / "a_file").write_text("")
  hidden = _edited_policy(saved, tmp_path, lambda spec: spec["learner"].update(hidden=[8, 8]))
  (tmp_path / "long").mkdir()
  for i, steps in enumerate((8, 9)):
    np.savez(tmp_path / "long" / f"ep{i}.npz", obs=np.zeros((steps, 2)),
             actions=np.zeros((steps, 2)), task=demos.task[i])
  ok = dict(policy=saved / "policy", demos=saved / "demos.npz", tasks=tmp_path / "tasks.json")
  cases = [
      (dict(demos=tmp_path / "empty.npz"), "demonstrations: the set is empty"),
      (dict(demos=tmp_path / "long"),
       f"{tmp_path / 'long' / 'ep1.npz'} has 9 steps, more than the policy's horizon 8"),
      (dict(tasks=tmp_path / "four.json"), "batch_size must be a whole number, got 'four'"),
      (dict(policy=hidden), "does not fit the learner"),
      (dict(), f"--out={tmp_path / 'a_file'} is a file"),
  ]
  for change, message in cases:
    args = {**ok, **change}
    out = tmp_path / ("a_file" if not change else "out")
    run = _command(tmp_path, args["policy"], args["demos"], args["tasks"], f"--out={out}")
    assert run.returncode == 2, (change, run.stderr[-2000:])
    # One line (brax's import warnings aside), no traceback.
    assert run.stderr.strip().splitlines()[-1].startswith("amf.suggest: error: ")
    assert message in run.stderr.strip().splitlines()[-1], run.stderr[-1000:]
    assert "Traceback" not in run.stderr and run.stderr.count("error") == 1, run.stderr[-2000:]
    assert not (tmp_path / "out").exists()
