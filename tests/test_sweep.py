"""Tests of the sweeps (`amf/sweep.py`): checkpointed resumption, tidy rows, sharding over
devices, and crash safety: a sweep killed with SIGKILL at any moment, checkpoint writes included,
resumes to the same bytes as an uninterrupted run (with `amf/checkpoint.py`).

The crash-safety runs are separate processes with the same seed, so equal bytes also show that
the same seed gives the same outputs.
"""
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import checkpoint, sweep
from amf.active import LoopConfig, choose, make_loop
from shared import B, K, LABELS, R, SETTINGS, gp_learner


@pytest.mark.slow  # > 3 s: sweep.run compiles its own program; orbax checkpoints
def test_sweep_run_resumes_from_its_checkpoint(gp_loop, tmp_path):
  loop, initial, final = gp_loop["loop"], gp_loop["initial"], gp_loop["final"]
  ckpt = str(tmp_path / "ckpt")
  first = sweep.run("amf", loop.advance, initial, 1, ckpt, 1, LABELS)
  np.testing.assert_array_equal(first.round, [1, 1])
  chex.assert_trees_all_close(first, gp_loop["after_one"], rtol=1e-5, atol=1e-5)
  # Resuming must start from the saved round 1, so the initial carry given now (garbage of
  # the right shapes) must not matter.
  garbage = jax.tree.map(jnp.zeros_like, initial)
  resumed = sweep.run("amf", loop.advance, garbage, R, ckpt, 1, LABELS)
  chex.assert_trees_all_close(resumed, final, rtol=1e-5, atol=1e-5)
  assert checkpoint.Progress(ckpt).latest(initial)[0] == R
  # A finished sweep only restores.
  again = sweep.run("amf", lambda c, n: pytest.fail("nothing left to run"), garbage, R, ckpt, 1,
                    LABELS)
  chex.assert_trees_all_close(again, final, rtol=0, atol=0)


def test_sweep_rows_are_tidy(gp_loop):
  final = gp_loop["final"]
  target = np.full(K, 1.0 / K)
  metrics, per_task, allocations = sweep.rows(final, "integrator", "amf", ["k=1", "k=1"],
                                              [0, 1], target)
  assert len(metrics) == 2 * (R + 1) and len(per_task) == 2 * (R + 1) * K
  assert len(allocations) == 2 * R * B
  row = metrics[R + 1 + 2]  # seed 1, round 2
  assert (row["seed"], row["round"], row["num_demos"], row["variant"]) == (1, 2, 2 * B, "k=1")
  np.testing.assert_allclose(row["success"], float(np.mean(final.success[1, 2])), rtol=1e-6)
  np.testing.assert_allclose(row["return"], float(np.mean(final.returns[1, 2])), rtol=1e-5)
  assert [a["task"] for a in allocations[:R * B]] == np.asarray(final.asked[0]).ravel().tolist()
  assert [a["round"] for a in allocations[:R * B]] == list(range(1, R + 1))


def test_sweep_run_stops_at_num_rounds_when_chunks_do_not_divide_it(gp_loop, tmp_path):
  # A stand-in loop with no budget of its own: sweep.run alone must stop at num_rounds.
  count = lambda c, n: c._replace(round=c.round + n)
  out = sweep.run("count", count, gp_loop["initial"], 3, str(tmp_path / "ckpt"), 2, LABELS)
  np.testing.assert_array_equal(out.round, [3, 3])


def test_programs_give_each_scored_strategy_its_own_per_proposal():
  """Fast: scored strategies get a program per proposal (labelled by it when there are
  several), the cheap ones share one, and a program's variants are its kernels x estimators."""
  assert sweep.programs(("uniform", "amf", "rebalancing", "uncertainty"), ("grid",)) == [
      (("amf",), "grid", ""), (("uncertainty",), "grid", ""),
      (("uniform", "rebalancing"), "grid", "")]
  assert sweep.programs(("round_robin",), ("grid",)) == [(("round_robin",), "grid", "")]
  assert sweep.programs(("amf", "uniform"), ("grid:8", "random")) == [
      (("amf",), "grid:8", "/grid8"), (("amf",), "random", "/random"),
      (("uniform",), "grid:8", "")]
  assert sweep.arms_of(("amf",), ("importance", "learned"), ("ntk",)) == [
      ("amf/importance", 0, 0, 0), ("amf/learned", 0, 1, 0)]
  assert sweep.arms_of(("uniform", "coverage"), ("importance",), ("ntk", "rbf")) == [
      ("uniform", 0, 0, 0), ("coverage", 1, 0, 0)]


def test_arm_groups_in_order_of_first_appearance(gp_loop):
  runs = jax.tree.map(lambda *x: jnp.concatenate(x),
                      *[choose(gp_loop["initial"], s, 0, k) for s, k in [(1, 0), (0, 2), (1, 0)]])
  groups = sweep.arm_groups(runs)
  assert [g for g, _ in groups] == [(1, 0, 0), (0, 0, 2)]
  np.testing.assert_array_equal(groups[0][1], [0, 1, 4, 5])
  np.testing.assert_array_equal(groups[1][1], [2, 3])


@pytest.mark.slow  # compiles the cheap baselines' loop
def test_a_batch_of_variants_runs_group_by_group_with_the_same_results(gp_loop):
  """Strategies picked per run: advancing each group with its index unbatched (only its own
  `lax.switch` branch runs) gives what the all-branches batched program gives."""
  env = gp_loop["env"]
  loop = make_loop(env, gp_learner(env), LoopConfig(
      strategies=("uniform", "round_robin", "rebalancing"), **SETTINGS))
  runs = jax.tree.map(lambda *x: jnp.concatenate(x),
                      *[choose(gp_loop["initial"], s) for s in (2, 0, 1, 0)])
  grouped = sweep.batched_advance(loop.advance)(runs, R)
  together = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))(runs, R)
  np.testing.assert_array_equal(grouped.asked, together.asked)
  np.testing.assert_array_equal(grouped.strategy, [2, 2, 0, 0, 1, 1, 0, 0])
  np.testing.assert_allclose(grouped.returns, together.returns, rtol=1e-4, atol=1e-4)


def test_chunks_are_near_equal_and_at_most_max_runs():
  runs = np.arange(10)
  assert [len(c) for c in sweep.chunks(runs, 4)] == [4, 3, 3]
  assert [len(c) for c in sweep.chunks(runs, 0)] == [10]
  assert [len(c) for c in sweep.chunks(runs, 20)] == [10]
  np.testing.assert_array_equal(np.concatenate(sweep.chunks(runs, 3)), runs)


@pytest.mark.slow  # compiles the cheap baselines' loop for two chunk sizes
def test_a_group_advanced_in_chunks_gives_the_same_results(gp_loop):
  """`max_runs` bounds the runs advanced at once; the runs and their order do not change."""
  env = gp_loop["env"]
  loop = make_loop(env, gp_learner(env), LoopConfig(
      strategies=("uniform", "round_robin"), **SETTINGS))
  runs = jax.tree.map(lambda *x: jnp.concatenate(x),
                      *[choose(gp_loop["initial"], s) for s in (0, 1, 0)])
  whole = sweep.batched_advance(loop.advance)(runs, R)
  chunked = sweep.batched_advance(loop.advance, max_runs=3)(runs, R)  # group of 4: 2 + 2
  np.testing.assert_array_equal(chunked.asked, whole.asked)
  np.testing.assert_array_equal(chunked.strategy, whole.strategy)
  np.testing.assert_allclose(chunked.returns, whole.returns, rtol=1e-4, atol=1e-4)


_SHARDED = textwrap.dedent("""
    import os, tempfile
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax, jax.numpy as jnp, numpy as np
    from amf import data, gp_kernels, sweep
    from amf.active import LoopConfig, make_loop
    from amf.envs.integrator import Integrator
    from amf.gp_policy import GPPolicy
    assert jax.device_count() == 2
    env = Integrator(horizon=8)
    learner = GPPolicy(env, gp_kernels.make("rbf", 2, 2, 0.5, 0.5, 1.0), 0.1, 0.1)
    loop = make_loop(env, learner, LoopConfig(pretrain_size=4, budget=2, eval_episodes=2,
                                              occupancy_samples=2))
    initial = jax.jit(jax.vmap(loop.init))(sweep.seed_keys(0, [0, 1]),
                                           jnp.stack([data.mix_weights("subset", 12, k=1)] * 2))
    sharded = sweep.shard(initial)
    assert len(sharded.round.sharding.device_set) == 2
    out = sweep.run("amf", loop.advance, initial, 2, tempfile.mkdtemp(), 2, ["a", "b"])
    assert len(out.asked.sharding.device_set) == 2
    single = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))(initial, 2)
    np.testing.assert_array_equal(np.asarray(out.asked), np.asarray(single.asked))
    print("ok")
""")


@pytest.mark.slow  # a subprocess
def test_sweep_shards_runs_over_devices():
  """Two (forced) host devices: the runs axis is split over both, with unchanged results."""
  result = subprocess.run([sys.executable, "-c", _SHARDED], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("ok")


TABLES = ("metrics.csv", "per_task.csv", "allocations.csv", "summary.csv", "stability.csv",
          "paired.csv")


def _start(workdir):
  cmd = [sys.executable, "-m", "experiments.integrator_gp",
         "--config=configs/integrator_gp.py:quick", "--config.num_seeds=2", "--config.ks=(1,3)",
         "--config.budget=4", "--config.checkpoint_every=1", f"--workdir={workdir}"]
  return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process):
  _, err = process.communicate(timeout=600)
  assert process.returncode == 0, err[-3000:]


def _kill_during_next_write(workdir, seen):
  """Starts the sweep and kills it the moment a new orbax checkpoint is being written."""
  process = _start(workdir)
  while process.poll() is None:
    writing = set(glob.glob(os.path.join(workdir, "checkpoints", "**", "*tmp*"),
                            recursive=True)) - seen
    if writing:
      process.send_signal(signal.SIGKILL)
      seen |= writing
      break
    time.sleep(0.002)
  process.wait()
  return process.returncode


@pytest.mark.slow  # subprocesses
def test_killed_sweeps_resume_to_the_same_bytes(tmp_path):
  reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
  _finish(_start(reference))
  seen = set()
  codes = [_kill_during_next_write(killed, seen) for _ in range(3)]
  # Then at a random moment (seeded, so the test is repeatable).
  process = _start(killed)
  time.sleep(np.random.default_rng(0).uniform(1.0, 8.0))
  process.send_signal(signal.SIGKILL)
  process.wait()
  _finish(_start(killed))
  assert codes == [-signal.SIGKILL] * 3, codes  # each was killed mid-write, not finished
  assert any("pretrained" in path for path in seen)  # the shared pre-training's save too
  for name in TABLES:
    assert ((tmp_path / "killed" / name).read_bytes()
            == (tmp_path / "reference" / name).read_bytes()), name


@pytest.mark.slow  # subprocesses
def test_a_damaged_newest_checkpoint_resumes_from_the_one_before(tmp_path):
  """Killed after two checkpoints of a sweep, its newest one's data files then damaged: the
  resumed run starts from the older one and writes the same bytes as an uninterrupted run."""
  from test_checkpoint import damage
  reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
  _finish(_start(reference))
  process = _start(killed)
  while process.poll() is None:  # until some sweep has two finished checkpoints
    finished = sorted(glob.glob(os.path.join(killed, "checkpoints", "*", "*",
                                             "commit_success.txt")))
    by_sweep = {}
    for path in finished:  # a step folder still named `<step>.orbax-checkpoint-tmp` is unfinished
      if not os.path.basename(os.path.dirname(path)).isdigit():
        continue
      by_sweep.setdefault(os.path.dirname(os.path.dirname(path)), []).append(path)
    ready = [paths for paths in by_sweep.values() if len(paths) >= 2]
    if ready:
      process.send_signal(signal.SIGKILL)
      break
    time.sleep(0.01)
  process.wait()
  assert ready, "the sweep finished before two checkpoints were seen"
  newest = max(ready[0], key=lambda p: int(os.path.basename(os.path.dirname(p))))
  damage(os.path.dirname(newest))
  process = _start(killed)
  _, err = process.communicate(timeout=600)
  assert process.returncode == 0, err[-3000:]
  assert "Skipping the checkpoint of step" in err
  for name in TABLES:
    assert ((tmp_path / "killed" / name).read_bytes()
            == (tmp_path / "reference" / name).read_bytes()), name


@pytest.mark.slow  # a subprocess
def test_bad_input_is_one_line_and_a_nonzero_status():
  result = subprocess.run([sys.executable, "-m", "launch.reproduce", "--figures=nonexistent",
                           "--workdir=/tmp/unused"], capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  assert "launch.reproduce: error: Unknown figure sweep(s) or study(s) ['nonexistent']" in (
      result.stderr)
  assert "Traceback" not in result.stderr
