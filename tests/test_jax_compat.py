"""The batched-Cholesky work-around of `amf/jax_compat.py` (jaxlib 0.10 on CPU)."""
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import amf  # pylint: disable=unused-import  (importing amf applies the work-around)


def _spd_batch(seed, batch=6, n=5):
  a = np.random.default_rng(seed).normal(size=(batch, n, n))
  return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def test_vmapped_cholesky_under_jit_matches_numpy():
  mats = _spd_batch(0)
  chol = jax.jit(jax.vmap(jnp.linalg.cholesky))(jnp.asarray(mats, jnp.float32))
  np.testing.assert_allclose(chol, np.linalg.cholesky(mats), rtol=1e-4, atol=1e-4)


def test_batched_cholesky_is_lowered_as_a_loop_on_cpu():
  if jax.default_backend() != "cpu":
    pytest.skip("The workaround only replaces the CPU lowering.")
  mats = jnp.asarray(_spd_batch(1), jnp.float32)
  batched = jax.jit(jax.vmap(jnp.linalg.cholesky)).lower(mats).as_text()
  single = jax.jit(jnp.linalg.cholesky).lower(mats[0]).as_text()
  assert "while" in batched
  assert "while" not in single


def test_batched_triangular_solves_are_lowered_as_a_loop_on_cpu_and_stay_exact():
  if jax.default_backend() != "cpu":
    pytest.skip("The workaround only replaces the CPU lowering.")
  tri = jnp.asarray(np.linalg.cholesky(_spd_batch(2)), jnp.float32)
  rhs = jnp.asarray(np.random.default_rng(3).normal(size=(6, 5, 3)), jnp.float32)
  solve = jax.vmap(lambda a, b: jax.scipy.linalg.solve_triangular(a, b, lower=True))
  assert "while" in jax.jit(solve).lower(tri, rhs).as_text()
  np.testing.assert_allclose(jax.jit(solve)(tri, rhs), np.linalg.solve(tri, rhs), rtol=1e-4,
                             atol=1e-5)


_TWO_CHOLESKYS = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    import amf  # applies the workaround
    rng = np.random.default_rng(0)
    def spd(b, n):
      a = rng.normal(size=(b, n, n))
      return jnp.asarray(a @ np.swapaxes(a, -1, -2) + n * np.eye(n), jnp.float32)
    @jax.jit
    def f(a, b):
      return jax.vmap(jnp.linalg.cholesky)(a).sum() + jax.vmap(jnp.linalg.cholesky)(b).sum()
    a, b = spd(64, 32), spd(64, 32)
    for _ in range(2):
      out = jax.block_until_ready(f(a, b))
    assert np.isfinite(out)
    print("ok")
""")


@pytest.mark.slow  # a subprocess
def test_two_independent_batched_choleskys_do_not_deadlock():
  """The pattern that hung jaxlib 0.10 on CPU; a subprocess so a hang fails, not blocks."""
  try:
    result = subprocess.run([sys.executable, "-c", _TWO_CHOLESKYS], capture_output=True,
                            text=True, timeout=90)
  except subprocess.TimeoutExpired:
    pytest.fail("Two independent batched Choleskys in one jitted call hung (deadlock).")
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().endswith("ok")
