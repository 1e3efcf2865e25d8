"""Tests of candidate proposals (`amf/proposals.py`), task boxes, and AMF's score as a function
of continuous task parameters (`Loop.alpha`): its gradient, its maximiser, and the loop that
asks for tasks off the finite set.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from amf import acquisition, data, forgetting, proposals, sweep
from amf.active import LoopConfig, choose, make_loop
from amf.envs.base import TaskBox
from amf.envs.integrator import Integrator
from amf.nn_learner import NNLearner
from amf.nn_policy import make_policy
from amf.proposals import Ascent, TaskBatch
from shared import gp_learner

ARC = ((1.7, 2.1),)  # mu: an arc between the integrator's grid points at 90 and 120 degrees
CONTINUOUS = dict(task_space="continuous", target_region=ARC, num_targets=6, pretrain_size=4,
                  budget=2, batch_size=1, eval_episodes=2, occupancy_samples=6,
                  num_candidates=8, ascent=Ascent(starts=2, steps=30, learning_rate=0.03))


def test_task_box_samples_projects_and_refuses_regions_outside_it():
  box = TaskBox((0.0, 0.1), (2 * np.pi, 0.2), (True, False))
  tasks = np.asarray(box.sample(jax.random.PRNGKey(0), 500))
  assert tasks.shape == (500, 2) and bool(box.contains(tasks).all())
  assert tasks[:, 0].min() < 0.1 and tasks[:, 0].max() > 6.1  # it fills the box
  projected = np.asarray(box.project(jnp.array([[-0.5, 0.05], [2 * np.pi + 0.25, 0.3]])))
  # The angle wraps, the radius is clipped.
  np.testing.assert_allclose(projected, [[2 * np.pi - 0.5, 0.1], [0.25, 0.2]], atol=1e-5)
  arc = box.region(((1.0, 2.0), (0.1, 0.2)))
  assert arc.periodic == (False, False)  # a strict sub-range of an angle does not wrap
  assert box.region(((0.0, 2 * np.pi), (0.1, 0.15))).periodic == (True, False)
  with pytest.raises(ValueError, match="leave the task space"):
    box.region(((1.0, 2.0), (0.05, 0.2)))
  with pytest.raises(ValueError, match="each of the 2 task parameters"):
    box.region(((1.0, 2.0),))


def test_the_finite_task_set_is_the_grid_of_its_size():
  env = Integrator(num_tasks=12)
  np.testing.assert_array_equal(env.tasks, env.grid(12))
  np.testing.assert_allclose(env.grid(4)[:, 0], [0, np.pi / 2, np.pi, 3 * np.pi / 2], atol=1e-6)


@pytest.mark.slow  # 6 s: builds the brax environments
def test_product_grid_spreads_over_every_task_parameter():
  box = TaskBox((0.0, 0.1), (2 * np.pi, 0.2), (True, False))  # (angle, radius)
  for num, shape in [(2, (2, 1)), (4, (2, 2)), (8, (4, 2)), (16, (4, 4)), (32, (8, 4)),
                     (7, (7, 1))]:
    grid = np.asarray(box.grid(num))
    assert grid.shape == (num, 2) and bool(box.contains(grid).all())
    angles, radii = (np.unique(grid[:, d].round(5)) for d in (0, 1))
    assert (len(angles), len(radii)) == shape, num
    # The angle wraps: its points are a period / count apart from 0; the radius sits at the
    # centres of equal cells.
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(shape[0]) / shape[0], atol=1e-5)
    np.testing.assert_allclose(radii, 0.1 + 0.1 * (np.arange(shape[1]) + 0.5) / shape[1],
                               atol=1e-6)
  # On a single periodic parameter it is the integrator's finite set of that size.
  env = Integrator(num_tasks=12)
  np.testing.assert_allclose(env.task_space.grid(12), env.tasks, atol=1e-6)


def test_grid_proposals_score_the_product_grid_and_the_finite_set_by_name():
  env = Integrator(horizon=8)
  for num, tasks, ids in [(0, env.tasks, np.arange(12)), (5, env.task_space.grid(5), [-1] * 5)]:
    loop = make_loop(env, gp_learner(env), LoopConfig(
        proposal="grid", num_candidates=num, task_space="continuous", num_targets=2,
        pretrain_size=2, budget=1, eval_episodes=1, occupancy_samples=1))
    carry = jax.jit(loop.init)(jax.random.PRNGKey(0), jnp.full(12, 1 / 12))
    scored = jax.jit(loop.scoring)(carry, jax.random.PRNGKey(1)).tasks
    np.testing.assert_allclose(scored.tasks, tasks, atol=1e-6)
    np.testing.assert_array_equal(scored.ids, ids)


def _context(alpha, space, num=16, ascent=Ascent(starts=3, steps=50, learning_rate=0.05)):
  draw = lambda key, n: TaskBatch(space.sample(key, n), jnp.full((n,), -1, jnp.int32))
  grid = TaskBatch(space.sample(jax.random.PRNGKey(9), num), jnp.full((num,), -1, jnp.int32))
  return proposals.Context(space, grid, num, draw, alpha, ascent)


def test_ascent_climbs_a_smooth_score_and_stays_in_the_box():
  space = TaskBox((0.0, -1.0), (1.0, 1.0), (False, False))
  # Peak at (0.3, 0.4); a second, lower bump the ascent may start near.
  alpha = lambda c: (jnp.exp(-jnp.sum((c - jnp.array([0.3, 0.4])) ** 2, -1) / 0.05)
                     + 0.5 * jnp.exp(-jnp.sum((c - jnp.array([0.9, -0.8])) ** 2, -1) / 0.02))
  batch = jax.jit(lambda k: proposals.continuous(_context(alpha, space), k))(
      jax.random.PRNGKey(0))
  assert batch.tasks.shape == (16 + 3, 2)
  np.testing.assert_array_equal(batch.ids, -1)
  assert bool(space.contains(batch.tasks).all())
  best = batch.tasks[jnp.argmax(alpha(batch.tasks))]
  np.testing.assert_allclose(best, [0.3, 0.4], atol=0.02)
  # A score that grows without bound outside the box ends on its boundary, not beyond.
  edge = jax.jit(lambda k: proposals.continuous(_context(lambda c: 5 * c[..., 0] + c[..., 1],
                                                         space), k))(jax.random.PRNGKey(1))
  assert bool(space.contains(edge.tasks).all())
  np.testing.assert_allclose(edge.tasks[16:], [[1.0, 1.0]] * 3, atol=1e-5)


def test_grid_and_random_proposals():
  space = TaskBox((0.0,), (1.0,), (False,))
  ctx = _context(None, space, num=5)
  assert proposals.grid(ctx, None) is ctx.grid
  a, b = (proposals.random(ctx, jax.random.PRNGKey(s)).tasks for s in (0, 1))
  assert a.shape == (5, 1) and not np.array_equal(a, b)


@pytest.mark.parametrize("name", ["lattice", "Grid"])
def test_unknown_proposal_raises(name):
  with pytest.raises(ValueError, match=f"candidate proposal '{name}'"):
    proposals.get(name)


@pytest.mark.parametrize("kwargs,match", [
    (dict(task_space="continuous", strategies=("amf", "rebalancing")), "coverage"),
    (dict(task_space="continuous", target_tasks=(1, 2)), "target_region instead"),
    (dict(target_region=((0.0, 1.0),)), "continuous task space"),
    (dict(task_space="discrete"), "Unknown task space"),
    (dict(proposal="lattice"), "candidate proposal 'lattice'"),
    (dict(proposal="continuous", strategies=("uncertainty",)), "ascends AMF's score"),
    (dict(proposal="continuous", num_candidates=2, ascent=Ascent(starts=3)), "starts <="),
    (dict(proposal="continuous", ascent=Ascent(learning_rate=0.0)), "learning_rate > 0"),
    (dict(task_space="continuous", target_region=((1.0, 7.0),)), "leave the task space"),
    (dict(num_targets=0), "num_targets"),
])
def test_task_space_settings_are_refused_before_compiling(kwargs, match):
  env = Integrator(horizon=8)
  with pytest.raises(ValueError, match=match):
    make_loop(env, gp_learner(env), LoopConfig(**kwargs))


def _nn_learner(env, kernels):
  policy = make_policy(2, 2, 2, (16, 16), 0.05)
  mitigation = forgetting.make("replay", env, policy, optax.adam(1e-3), 32)
  return NNLearner(env, policy, mitigation, kernels, 0.1, 100, 20)


def _initial(env, learner, **kwargs):
  loop = make_loop(env, learner, LoopConfig(**{**CONTINUOUS, **kwargs}))
  # Pre-training on tasks 0 and 1 (0 and 30 degrees), far from the target arc.
  weights = data.mix_weights("subset", env.num_tasks, k=2)
  return loop, jax.jit(loop.init)(jax.random.PRNGKey(0), weights)


# The GP in the fast suite; the NN kernels (each compiles its own loop, 15 s) with the slow.
LEARNER_KERNELS = [("gp", 0)] + [pytest.param("nn", k, marks=pytest.mark.slow)
                                 for k in (0, 1, 2, 3)]


@pytest.mark.parametrize("learner,kernel", LEARNER_KERNELS)
def test_gradient_of_alpha_in_the_task_equals_finite_differences(learner, kernel):
  env = Integrator(horizon=8)
  model = (gp_learner(env) if learner == "gp"
           else _nn_learner(env, ("last_layer", "ntk", "dropout", "loss_gradient")))
  loop, carry = _initial(env, model)
  carry = choose(carry, kernel=kernel)
  key = jax.random.PRNGKey(3)
  alpha = jax.jit(lambda c: loop.alpha(carry, key, c[None])[0])
  for angle in (1.2, 2.6):
    c = jnp.array([angle])
    grad = float(jax.jit(jax.grad(lambda c: loop.alpha(carry, key, c[None])[0]))(c)[0])
    eps = 3e-3
    numeric = float((alpha(c + eps) - alpha(c - eps)) / (2 * eps))
    assert abs(grad) > 1e-3, (learner, angle, grad)  # a slope that the test can check
    np.testing.assert_allclose(grad, numeric, rtol=0.05, atol=1e-4)


@pytest.mark.slow  # 4 s of compilation; test_ascent_climbs_a_smooth_score... is its fast counterpart
def test_continuous_search_reaches_the_maximum_of_alpha_on_a_dense_grid():
  env = Integrator(horizon=8)
  loop, carry = _initial(env, gp_learner(env))
  key = jax.random.PRNGKey(4)
  dense = jnp.linspace(0.0, 2 * np.pi, 720, endpoint=False)[:, None]
  # One task at a time: scoring many together builds one covariance over all their inputs.
  on_grid = np.asarray(jax.jit(lambda t: jax.lax.map(
      lambda c: loop.alpha(carry, key, c[None])[0], t))(dense))
  score = lambda t: loop.alpha(carry, key, t)
  space = env.task_space
  ctx = proposals.Context(space, None, 8, lambda k, n: TaskBatch(
      space.sample(k, n), jnp.full((n,), -1, jnp.int32)), score,
      Ascent(starts=2, steps=40, learning_rate=0.03))
  batch = jax.jit(lambda k: proposals.continuous(ctx, k))(jax.random.PRNGKey(5))
  found = np.asarray(jax.jit(score)(batch.tasks))
  spread = on_grid.max() - on_grid.min()
  assert found.max() >= on_grid.max() - 0.01 * spread, (found.max(), on_grid.max())
  assert found.max() > found[:8].max()  # the ascent improved on the best random draw
  assert bool(space.contains(batch.tasks).all())


@pytest.fixture(scope="module")
def continuous_run():
  """AMF (continuous proposal), uniform and coverage, 2 seeds, on targets drawn from an arc."""
  env = Integrator(horizon=8)
  out = {}
  keys = sweep.seed_keys(0, [0, 1])
  weights = jnp.stack([data.mix_weights("subset", env.num_tasks, k=2)] * 2)
  for strategies, proposal in [(("amf",), "continuous"), (("uniform", "coverage"), "random")]:
    loop = make_loop(env, gp_learner(env), LoopConfig(strategies=strategies, proposal=proposal,
                                                      **CONTINUOUS))
    initial = jax.jit(jax.vmap(loop.init))(keys, weights)
    runs = jax.tree.map(lambda *x: jnp.concatenate(x),
                        *[choose(initial, strategy=i) for i in range(len(strategies))])
    final = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))(runs, 2)
    for i, name in enumerate(strategies):
      out[name] = jax.tree.map(lambda x: x[2 * i:2 * i + 2], final)
  return env, out


@pytest.mark.slow  # 7 s: their fixture runs a continuous sweep
def test_continuous_runs_evaluate_targets_drawn_from_mu_shared_by_every_method(continuous_run):
  env, runs = continuous_run
  targets = np.asarray(runs["amf"].targets)
  assert targets.shape == (2, 6, 1)
  assert np.all((targets >= ARC[0][0]) & (targets <= ARC[0][1]))
  assert not np.array_equal(targets[0], targets[1])  # fixed per seed
  for name in ("uniform", "coverage"):
    np.testing.assert_array_equal(runs[name].targets, targets)
  assert runs["amf"].returns.shape == (2, 3, 6)


@pytest.mark.slow  # 7 s: their fixture runs a continuous sweep
def test_continuous_runs_ask_for_tasks_off_the_finite_set(continuous_run):
  env, runs = continuous_run
  for name, final in runs.items():
    asked = np.asarray(final.data.task[:, 4:, 0])
    np.testing.assert_array_equal(final.asked, -1)
    np.testing.assert_array_equal(final.data.task_id[:, 4:], -1)
    assert bool(env.task_space.contains(final.data.task[:, 4:]).all())
    if name != "amf":  # draws from mu, and mu's tasks themselves
      assert np.all((asked >= ARC[0][0]) & (asked <= ARC[0][1])), (name, asked)
  # AMF's first question is about the target arc, not the pre-trained tasks near 0-30 degrees.
  first = np.asarray(runs["amf"].data.task[:, 4, 0])
  assert np.all((first > 1.2) & (first < 2.6)), first
  # Coverage's first pick is the target farthest from the pre-training tasks.
  targets = np.asarray(runs["coverage"].targets[..., 0])
  np.testing.assert_allclose(runs["coverage"].data.task[:, 4, 0], targets.max(-1))


@pytest.mark.slow  # 11-15 s a case (its own loop each); test_acquisition checks factorised = query_set fast
@pytest.mark.parametrize("learner,kernel", LEARNER_KERNELS)
def test_the_factorised_score_equals_the_joint_covariance_score(learner, kernel):
  """`Loop.alpha` and the continuous search score task sets against one factorisation of the
  data; the grid and random proposals build one covariance over every input. Same model."""
  env = Integrator(horizon=8)
  model = (gp_learner(env) if learner == "gp"
           else _nn_learner(env, ("last_layer", "ntk", "dropout", "loss_gradient")))
  loop, carry = _initial(env, model, proposal="random")
  carry = choose(carry, kernel=kernel)
  key = jax.random.PRNGKey(3)
  scored = jax.jit(loop.scoring)(carry, key)
  joint = acquisition.scores(scored.cov, scored.noise, scored.targets, scored.candidates)
  factorised = jax.jit(loop.alpha)(carry, key, scored.tasks.tasks)
  assert float(jnp.std(joint)) > 1e-3  # the candidates' scores differ
  np.testing.assert_allclose(factorised, joint, rtol=2e-3, atol=2e-4)
  # The continuous proposal's covariance, assembled from the factorised parts, scores its
  # candidates as the factorised score does.
  cont, _ = _initial(env, model, proposal="continuous")
  scored = jax.jit(cont.scoring)(carry, key)
  assert scored.tasks.tasks.shape[0] == 8 + 2  # the draws and the refined tasks
  np.testing.assert_allclose(
      acquisition.scores(scored.cov, scored.noise, scored.targets, scored.candidates),
      jax.jit(loop.alpha)(carry, key, scored.tasks.tasks), rtol=2e-3, atol=2e-4)


def test_the_continuous_proposal_refuses_a_transductive_kernel():
  env = Integrator(horizon=8)
  with pytest.raises(ValueError, match="random_walk"):
    _initial(env, _nn_learner(env, ("last_layer", "random_walk")), proposal="continuous")
