"""Tests of AMF's acquisition maths against brute-force NumPy GP conditioning."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tinygp import kernels

from amf import acquisition, gp
from amf.acquisition import Candidates, Targets

DATA_NOISE = 0.2  # noise std of the observations in D
NOISE = 0.3       # noise std of a candidate's (hypothetical) observations X
C, M, H = 3, 2, 2


def _k(a, b, scale=1.0):
  return np.exp(-0.5 * np.sum((a[:, None] - b[None]) ** 2, -1) / scale ** 2)


def _post_cov(data, z, extra=None):
  """Brute-force posterior covariance over `z` given `data` (+ `extra` observed with NOISE)."""
  noise = np.full(len(data), DATA_NOISE ** 2)
  if extra is not None and len(extra):
    data = np.concatenate([data, extra])
    noise = np.concatenate([noise, np.full(len(extra), NOISE ** 2)])
  inv = np.linalg.inv(_k(data, data) + np.diag(noise))
  k_zd = _k(z, data)
  return _k(z, z) - k_zd @ inv @ k_zd.T


def _ig(data, z, targets, observed):
  var_d = np.diag(_post_cov(data, z))[targets.index]
  var_dx = np.diag(_post_cov(data, z, z[observed]))[targets.index]
  return np.sum(targets.weights * 0.5 * np.log(var_d / var_dx))


def _scores(data, z, targets, cands, picked=()):
  """Brute-force alpha(c), with noisy observations at `picked` (indices into z) added to D."""
  picked = np.asarray(picked, int)

  def ig(observed):
    var_d = np.diag(_post_cov(data, z, z[picked]))[targets.index]
    var_dx = np.diag(_post_cov(data, z, z[np.concatenate([picked, observed])]))[targets.index]
    return np.sum(targets.weights * 0.5 * np.log(var_d / var_dx))

  return np.array([sum(cands.weights[c, i] * ig(cands.index[c, i]) for i in range(M))
                   for c in range(C)])


def _targets(index, weights):
  """Targets of a unit-variance prior (the RBF's), floored as the loop floors them."""
  return Targets(index, weights, gp.variance_floor(np.ones(len(index))))


def _problem(seed):
  """Data D (6 points), query Z (12 points) in 3-D, candidate blocks and weighted targets."""
  rng = np.random.default_rng(seed)
  data = rng.normal(size=(6, 3))
  z = rng.normal(size=(12, 3))
  index = rng.permutation(12).reshape(C, M, H)
  weights = rng.dirichlet(np.ones(M), size=C)
  t_index = np.arange(12)
  t_weights = rng.dirichlet(np.ones(12))
  return (data, z, Candidates(index, weights), _targets(t_index, t_weights))


def _jax(tree):
  return jax.tree.map(jnp.asarray, tree)


@jax.jit
def _vr(cov, observed):
  return acquisition.variance_reduction(cov, NOISE, observed)


@jax.jit
def _info(cov, targets, observed):
  return acquisition.information_gain(cov, NOISE, targets, observed)


@jax.jit
def _score(cov, targets, cands):
  return acquisition.scores(cov, NOISE, targets, cands)


@jax.jit
def _condition(cov, observed):
  return acquisition.condition(cov, NOISE, observed)


def _greedy(cov, targets, cands, batch_size):
  return jax.jit(acquisition.greedy_batch, static_argnums=(1, 4))(
      cov, NOISE, _jax(targets), _jax(cands), batch_size)[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_variance_reduction_matches_explicit_conditioning(seed):
  data, z, cands, _ = _problem(seed)
  cov = _post_cov(data, z)
  observed = cands.index.reshape(C * M, H)  # every estimated trajectory is one input set
  expected = np.stack([np.diag(cov) - np.diag(_post_cov(data, z, z[x])) for x in observed], 1)
  got = _vr(jnp.asarray(cov, jnp.float32), jnp.asarray(observed))
  assert got.shape == (12, C * M)
  np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)
  assert np.all(expected >= 0) and expected.max() > 0.05  # a non-trivial problem


def test_variance_reduction_counts_repeated_observations_twice():
  data, z, _, _ = _problem(2)
  cov = _post_cov(data, z)
  observed = np.array([[3, 3], [3, 5]])
  expected = np.stack([np.diag(cov) - np.diag(_post_cov(data, z, z[x])) for x in observed], 1)
  got = _vr(jnp.asarray(cov, jnp.float32), jnp.asarray(observed))
  np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)
  once = np.diag(cov) - np.diag(_post_cov(data, z, z[[3]]))
  assert expected[3, 0] > once[3] + 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_information_gain_matches_brute_force(seed):
  data, z, cands, targets = _problem(seed)
  cov = jnp.asarray(_post_cov(data, z), jnp.float32)
  observed = cands.index[:, 1]  # (C, H)
  got = _info(cov, _jax(targets), jnp.asarray(observed))
  assert got.shape == (C,)
  expected = [_ig(data, z, targets, x) for x in observed]
  np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)


def test_information_gain_on_a_subset_of_targets():
  data, z, cands, _ = _problem(7)
  targets = _targets(np.array([1, 4, 9]), np.array([0.5, 0.3, 0.2]))
  cov = jnp.asarray(_post_cov(data, z), jnp.float32)
  observed = cands.index.reshape(C * M, H)
  got = _info(cov, _jax(targets), jnp.asarray(observed))
  np.testing.assert_allclose(got, [_ig(data, z, targets, x) for x in observed], rtol=1e-3,
                             atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_are_weighted_sums_over_estimated_trajectories(seed):
  data, z, cands, targets = _problem(seed)
  cov = jnp.asarray(_post_cov(data, z), jnp.float32)
  got = _score(cov, _jax(targets), _jax(cands))
  assert got.shape == (C,)
  np.testing.assert_allclose(got, _scores(data, z, targets, cands), rtol=1e-3, atol=1e-6)


def test_condition_equals_posterior_with_the_observations_added():
  data, z, cands, _ = _problem(3)
  observed = cands.index[2, 1]
  got = _condition(jnp.asarray(_post_cov(data, z), jnp.float32), jnp.asarray(observed))
  np.testing.assert_allclose(got, _post_cov(data, z, z[observed]), rtol=1e-3, atol=1e-5)


def _brute_force_greedy(data, z, targets, cands, batch_size):
  picked_inputs, chosen = [], []
  for _ in range(batch_size):
    s = _scores(data, z, targets, cands, picked_inputs)
    top2 = np.sort(s)[-2:]
    assert top2[1] - top2[0] > 1e-3 * top2[1], "ambiguous argmax; pick another seed"
    best = int(np.argmax(s))
    chosen.append(best)
    picked_inputs += list(cands.index[best, np.argmax(cands.weights[best])])
  return chosen


@pytest.mark.parametrize("seed", [0, 4])
def test_greedy_batch_matches_brute_force_greedy_loop(seed):
  data, z, cands, targets = _problem(seed)
  cov = jnp.asarray(_post_cov(data, z), jnp.float32)
  expected = _brute_force_greedy(data, z, targets, cands, 4)
  got = _greedy(cov, targets, cands, 4)
  assert got.shape == (4,)
  assert int(got[0]) == int(np.argmax(_scores(data, z, targets, cands)))
  np.testing.assert_array_equal(got, expected)


def test_candidate_far_from_every_target_scores_zero():
  data, z, cands, targets = _problem(5)
  z = z.copy()
  z[cands.index[0].ravel()] = 50.0 + np.arange(M * H)[:, None]  # far away, distinct
  targets = _targets(np.setdiff1d(np.arange(12), cands.index[0].ravel()),
                    np.full(12 - M * H, 1.0 / (12 - M * H)))
  s = _score(jnp.asarray(_post_cov(data, z), jnp.float32), _jax(targets), _jax(cands))
  assert abs(float(s[0])) < 1e-6
  assert float(s[1]) > 1e-3 and float(s[2]) > 1e-3


def test_greedy_batch_may_pick_a_candidate_again():
  # Candidate 0 sits on the targets; 1 and 2 are far from them and from each other.
  rng = np.random.default_rng(6)
  data = rng.normal(size=(4, 3)) + 20.0
  z = np.concatenate([rng.normal(size=(4, 3)), 40.0 + 3 * np.arange(8)[:, None]
                      * np.ones((8, 3))])
  cands = Candidates(np.arange(12).reshape(C, M, H), np.full((C, M), 0.5))
  targets = _targets(np.arange(4), np.full(4, 0.25))
  chosen = _greedy(jnp.asarray(_post_cov(data, z), jnp.float32), targets, cands, 3)
  np.testing.assert_array_equal(chosen, [0, 0, 0])


def test_information_gain_is_finite_at_zero_prior_variance():
  # A target whose variance is already zero (numerically) gains nothing, not NaN.
  cov = jnp.diag(jnp.array([0.0, 1.0, 1.0]))
  targets = _targets(jnp.arange(3), jnp.full(3, 1 / 3))
  gain = _info(cov, targets, jnp.array([[0]]))
  assert gain.shape == (1,)
  assert np.isfinite(gain[0]) and abs(float(gain[0])) < 1e-6


def test_own_variance_picks_the_most_uncertain_candidate_and_conditions():
  # Three candidates of one input each; the second has the largest variance.
  cov = jnp.diag(jnp.array([0.5, 2.0, 1.0]))
  cands = acquisition.Candidates(jnp.arange(3).reshape(3, 1, 1), jnp.ones((3, 1)))
  np.testing.assert_allclose(acquisition.own_variance(cov, cands), [0.5, 2.0, 1.0])
  score = lambda c: acquisition.own_variance(c, cands)
  # After observing candidate 1 (noise 0.1) its variance drops below candidate 2's.
  np.testing.assert_array_equal(acquisition.greedy(cov, 0.1, cands, 2, score)[0], [1, 2])


def test_round_off_below_the_relative_floor_gains_nothing():
  """A target known to float32 precision (posterior variance 3e-8 of a unit prior) and a
  candidate so correlated with it that observing it would leave 1e-9: the variances are
  round-off, below `gp.RELATIVE_VARIANCE_FLOOR`, and the gain is 0. With the former absolute
  floor of 1e-9 this candidate scored 0.5 log(30) = 1.7 nats."""
  v, u, noise = 3e-8, 1.0, 0.1
  c = np.sqrt((v - 1e-9) * (u + noise ** 2))  # c^2 / (u + noise^2) = v - 1e-9
  cov = jnp.array([[v, c], [c, u]], jnp.float32)
  gain = acquisition.information_gain(cov, noise, _targets(jnp.array([0]), jnp.ones(1)),
                                      jnp.array([[1]]))
  np.testing.assert_allclose(gain, 0.0, atol=1e-6)
  unfloored = Targets(jnp.array([0]), jnp.ones(1), jnp.full(1, 1e-9))
  np.testing.assert_allclose(acquisition.information_gain(cov, noise, unfloored,
                                                          jnp.array([[1]])),
                             0.5 * np.log(30.0), rtol=0.05)


@pytest.mark.parametrize("seed", [0, 1])
def test_query_set_puts_targets_first_and_factorised_scores_match_it(seed):
  """alpha's whole definition: `query_set` + `scores` against brute-force conditioning, and
  `factorised` (one factorisation of D, each candidate set paying for its own inputs) equal to
  it."""
  rng = np.random.default_rng(seed)
  data = rng.normal(size=(6, 3))
  mu = rng.dirichlet(np.ones(2))
  targets = acquisition.Estimated(rng.normal(size=(2, M, H, 3)), rng.dirichlet(np.ones(M), 2))
  cands = acquisition.Estimated(rng.normal(size=(C, M, H, 3)), rng.dirichlet(np.ones(M), C))
  kernel, mask = kernels.ExpSquared(), np.ones(6, bool)

  def covariance(noise):
    return lambda z: (gp.posterior_covariance(kernel, data, mask, DATA_NOISE, z),
                      gp.prior_variance(kernel, z), noise)

  cov, noise, t, c = jax.jit(lambda a, b: acquisition.query_set(covariance(NOISE), mu, a, b))(
      _jax(targets), _jax(cands))
  np.testing.assert_array_equal(t.index, np.arange(2 * M * H))
  np.testing.assert_array_equal(c.index, 2 * M * H + np.arange(C * M * H).reshape(C, M, H))
  np.testing.assert_allclose(t.weights.sum(), 1.0, rtol=1e-6)
  z = np.concatenate([targets.flat(), cands.flat()])
  np.testing.assert_allclose(acquisition.scores(cov, noise, t, c),
                             _scores(data, z, Targets(t.index, np.asarray(t.weights), None), c),
                             rtol=1e-3, atol=1e-6)

  @jax.jit
  def both(targets, cands):
    score, joint = acquisition.factorised(gp.model(kernel, data, mask, DATA_NOISE), mu, targets)
    same = acquisition.query_set(covariance(DATA_NOISE), mu, targets, cands)
    return score(cands), acquisition.scores(*same), joint(cands)[0], same[0]

  score, expected, cov_once, cov = both(_jax(targets), _jax(cands))
  np.testing.assert_allclose(score, expected, rtol=1e-3, atol=1e-6)
  np.testing.assert_allclose(cov_once, cov, rtol=1e-4, atol=1e-5)


def _cut(est: acquisition.Estimated, length: int) -> acquisition.Estimated:
  return acquisition.Estimated(est.inputs[:, :, :length], est.weights)


def _padded(est: acquisition.Estimated, extra: int, rng) -> acquisition.Estimated:
  """`est` with `extra` unrecorded steps of garbage inputs appended."""
  n, m, h, d = est.inputs.shape
  garbage = rng.normal(size=(n, m, extra, d))  # near the real inputs: they would count
  steps = np.broadcast_to(np.arange(h + extra) < h, (n, m, h + extra))
  return acquisition.Estimated(np.concatenate([est.inputs, garbage], 2), est.weights, steps)


def test_unrecorded_steps_score_as_the_trajectories_cut_to_their_recorded_steps():
  """Estimated trajectories whose last steps are marked unrecorded (`steps`) and hold garbage
  give what the trajectories cut to their recorded steps give (the unmasked code path): the
  targets' weights, alpha (`query_set` and `factorised`), the greedy batch and the covariance it
  leaves, and the undirected score."""
  rng = np.random.default_rng(0)
  data = rng.normal(size=(6, 3))
  mu = rng.dirichlet(np.ones(2))
  h, extra = 3, 2
  targets = acquisition.Estimated(rng.normal(size=(2, M, h, 3)), rng.dirichlet(np.ones(M), 2))
  cands = acquisition.Estimated(rng.normal(size=(C, M, h, 3)), rng.dirichlet(np.ones(M), C))
  kernel, mask = kernels.ExpSquared(), np.ones(6, bool)
  covariance = lambda z: (gp.posterior_covariance(kernel, data, mask, DATA_NOISE, z),
                          gp.prior_variance(kernel, z), NOISE)

  @jax.jit
  def everything(targets, cands):
    cov, noise, t, c = acquisition.query_set(covariance, mu, targets, cands)
    score, _ = acquisition.factorised(gp.model(kernel, data, mask, NOISE), mu, targets)
    chosen, after = acquisition.greedy_batch(cov, noise, t, c, 3)
    return (t.weights, acquisition.scores(cov, noise, t, c), score(cands), chosen,
            jnp.diag(after), acquisition.own_variance(cov, c))

  cut = everything(_jax(targets), _jax(cands))
  masked = everything(_jax(_padded(targets, extra, rng)), _jax(_padded(cands, extra, rng)))
  recorded = lambda n: (np.arange(n * M * (h + extra)).reshape(n, M, h + extra)[:, :, :h]
                        .reshape(-1))
  t_rows, c_rows = recorded(2), 2 * M * (h + extra) + recorded(C)
  np.testing.assert_allclose(masked[0][t_rows], cut[0], rtol=1e-6)
  assert np.all(np.delete(np.asarray(masked[0]), t_rows) == 0)
  for got, want in zip(masked[1:3], cut[1:3]):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
  np.testing.assert_array_equal(masked[3], cut[3])
  np.testing.assert_allclose(masked[4][np.concatenate([t_rows, c_rows])], cut[4],
                             rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(masked[5], cut[5], rtol=1e-5)


def test_trajectories_of_different_recorded_lengths_match_brute_force():
  """Each candidate trajectory observes only its recorded steps, and a target trajectory's
  steps share its weight equally (1 / its recorded length)."""
  rng = np.random.default_rng(1)
  data = rng.normal(size=(6, 3))
  mu = rng.dirichlet(np.ones(2))
  h = 3
  steps_t = np.arange(h) < rng.integers(1, h + 1, size=(2, M, 1))
  steps_c = np.arange(h) < rng.integers(1, h + 1, size=(C, M, 1))
  targets = acquisition.Estimated(rng.normal(size=(2, M, h, 3)), rng.dirichlet(np.ones(M), 2),
                                  steps_t)
  cands = acquisition.Estimated(rng.normal(size=(C, M, h, 3)), rng.dirichlet(np.ones(M), C),
                                steps_c)
  kernel, mask = kernels.ExpSquared(), np.ones(6, bool)
  covariance = lambda z: (gp.posterior_covariance(kernel, data, mask, DATA_NOISE, z),
                          gp.prior_variance(kernel, z), NOISE)
  cov, noise, t, c = jax.jit(lambda a, b: acquisition.query_set(covariance, mu, a, b))(
      _jax(targets), _jax(cands))
  v = mu[:, None, None] * targets.weights[..., None] * steps_t / steps_t.sum(-1, keepdims=True)
  np.testing.assert_allclose(t.weights, v.reshape(-1), rtol=1e-6)
  z = np.concatenate([targets.flat(), cands.flat()])
  t_np = Targets(np.asarray(t.index), np.asarray(t.weights), None)
  index = np.asarray(c.index)
  expected = [sum(cands.weights[j, i] * _ig(data, z, t_np, index[j, i][steps_c[j, i]])
                  for i in range(M)) for j in range(C)]
  np.testing.assert_allclose(acquisition.scores(cov, noise, t, c), expected, rtol=1e-3,
                             atol=1e-6)
