"""CPU settings for jaxlib 0.10: no deadlock in batched Cholesky and triangular solves, no
nested BLAS threads.

jaxlib's CPU LAPACK calls go to scipy's OpenBLAS, which by default starts its own threads
inside XLA's already parallel thread pool; on 2 cores that oversubscription made a 192 x 192
triangular solve 26x slower (8 ms vs 0.3 ms, measured here). OpenBLAS reads its thread count
when it first loads, on the first LAPACK call, so `apply()` sets it to 1 unless the user did.

jaxlib 0.10's LAPACK kernels split a batch across XLA's intra-op thread pool and block a
pool thread until the pieces finish. When as many batched factorisations run at once as the
pool has threads (2 here; vmapped GP fits make this common), every thread waits on work queued
behind it and the program hangs in `block_until_ready` (seen here with `py-spy`/`gdb`; later
jaxlib releases compile that parallel path out). On CPU we therefore lower a batched Cholesky
as a sequential loop of unbatched LAPACK calls, which never block on the pool. Batched
triangular solves (`trsm`) take the same parallel path and hung the same way once gradients
of vmapped GP posteriors appeared (the continuous task search, `amf.proposals`: a sweep sat at
0% CPU), so they get the same lowering.
"""
import functools
import os

import jax
from jax._src.lax import linalg as lax_linalg
from jax.interpreters import mlir

_applied = False


def _one_at_a_time(x):
  flat = x.reshape((-1,) + x.shape[-2:])
  return jax.lax.map(lax_linalg.cholesky_p.bind, flat).reshape(x.shape)


def _cpu_lowering(ctx, operand):
  if len(ctx.avals_in[0].shape) == 2:
    return lax_linalg._cholesky_cpu_lowering(ctx, operand)  # pylint: disable=protected-access
  return mlir.lower_fun(_one_at_a_time, multiple_results=False)(ctx, operand)


def _solves_one_at_a_time(a, b, **params):
  flat = lambda x: x.reshape((-1,) + x.shape[-2:])
  solve = lambda ab: lax_linalg.triangular_solve_p.bind(*ab, **params)
  return jax.lax.map(solve, (flat(a), flat(b))).reshape(b.shape)


def _solve_cpu_lowering(ctx, a, b, **params):
  if len(ctx.avals_in[0].shape) == 2:
    # pylint: disable-next=protected-access
    return lax_linalg._triangular_solve_cpu_lower(ctx, a, b, **params)
  return mlir.lower_fun(functools.partial(_solves_one_at_a_time, **params),
                        multiple_results=False)(ctx, a, b)


def apply() -> None:
  """Registers the sequential lowering and limits BLAS threads (idempotent); call early."""
  global _applied
  os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
  if not _applied:
    mlir.register_lowering(lax_linalg.cholesky_p, _cpu_lowering, platform="cpu")
    mlir.register_lowering(lax_linalg.triangular_solve_p, _solve_cpu_lowering, platform="cpu")
    _applied = True
