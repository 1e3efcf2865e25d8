"""The project's one entry point to neural-tangents (patched for current JAX).

Import `nt` and `stax` from here, never `neural_tangents` directly, so that
`amf.nt_compat` has run first.
"""
from amf import nt_compat

nt_compat.apply()

import neural_tangents as nt  # pylint: disable=g-import-not-at-top,wrong-import-position
from neural_tangents import stax  # pylint: disable=g-import-not-at-top,wrong-import-position

__all__ = ["nt", "stax", "empirical_ntk_fn"]

_UNSUPPORTED = (nt.NtkImplementation.AUTO,
                nt.NtkImplementation.STRUCTURED_DERIVATIVES)


def empirical_ntk_fn(apply_fn, **kw):
  """`nt.empirical_ntk_fn`, restricted to the implementations that work here.

  Defaults to `JACOBIAN_CONTRACTION`. `STRUCTURED_DERIVATIVES` relies on JAX
  internals that changed since neural-tangents 0.6.5, and `AUTO` may pick it.
  """
  impl = nt.NtkImplementation(
      kw.setdefault("implementation",
                    nt.NtkImplementation.JACOBIAN_CONTRACTION))
  if impl in _UNSUPPORTED:
    raise ValueError(
        f"NTK implementation {impl.name} is unsupported: neural-tangents 0.6.5's "
        "STRUCTURED_DERIVATIVES fails on current JAX (and AUTO may choose it). "
        "Use JACOBIAN_CONTRACTION or NTK_VECTOR_PRODUCTS.")
  return nt.empirical_ntk_fn(apply_fn, **kw)
