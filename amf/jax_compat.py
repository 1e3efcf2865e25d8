"""CPU settings for jaxlib 0.10: no deadlock in batched Cholesky, no nested BLAS threads.

jaxlib's CPU LAPACK calls go to scipy's OpenBLAS, which by default starts its own threads
inside XLA's already parallel thread pool; on 2 cores that oversubscription made a 192 x 192
triangular solve 26x slower (8 ms vs 0.3 ms, measured here). OpenBLAS reads its thread count
when it first loads, on the first LAPACK call, so `apply()` sets it to 1 unless the user did.

jaxlib 0.10's LAPACK kernels split a batch across XLA's intra-op thread pool and block a
pool thread until the pieces finish. When as many batched factorisations run at once as the
pool has threads (2 here; vmapped GP fits make this common), every thread waits on work queued
behind it and the program hangs in `block_until_ready` (seen here with `py-spy`/`gdb`; later
jaxlib releases compile that parallel path out). On CPU we therefore lower a batched Cholesky
as a sequential loop of unbatched LAPACK calls, which never block on the pool.
"""
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


def apply() -> None:
  """Registers the sequential lowering and limits BLAS threads (idempotent); call early."""
  global _applied
  os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
  if not _applied:
    mlir.register_lowering(lax_linalg.cholesky_p, _cpu_lowering, platform="cpu")
    _applied = True
