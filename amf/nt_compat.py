"""Makes neural-tangents 0.6.5 importable on current JAX, without TensorFlow.

neural-tangents 0.6.5 (its latest release) was written against an older JAX.
`apply()` restores the few names it imports at module load, and keeps its
TensorFlow-only `experimental` package from pulling in TensorFlow. Each patch is
applied only where the name is missing, so on a JAX or neural-tangents that
already provides it `apply()` does nothing. It must run before the first
`import neural_tangents`; `amf.nt` does that and is the one place to import
neural-tangents from.

Only what the project uses is made to work: `stax` analytic kernels and the
empirical NTK by `JACOBIAN_CONTRACTION` or `NTK_VECTOR_PRODUCTS`. Its
`STRUCTURED_DERIVATIVES` implementation walks JAX internals that have changed
and still fails.
"""
import importlib.util
import sys
import types

import jax
import jax.core
import jax.extend.core
from jax._src import util as jax_src_util
from jax.interpreters import ad

# Moved from `jax.core` to `jax.extend.core`; neural-tangents imports them from
# `jax.core` in `_src/empirical.py` and `_src/utils/rules.py`.
_MOVED_TO_EXTEND_CORE = ("Jaxpr", "JaxprEqn", "Literal", "Var", "Primitive")


def _patch_jax_core() -> None:
  for name in _MOVED_TO_EXTEND_CORE:
    if not hasattr(jax.core, name):
      setattr(jax.core, name, getattr(jax.extend.core, name))


def _patch_jax_util() -> None:
  """Recreates the removed `jax.util` module with the two helpers NT imports."""
  if "jax.util" in sys.modules or importlib.util.find_spec("jax.util"):
    return
  util = types.ModuleType("jax.util", "Compatibility stand-in for jax.util.")
  util.safe_map = jax_src_util.safe_map
  util.safe_zip = jax_src_util.safe_zip
  sys.modules["jax.util"] = util
  jax.util = util


def _patch_zeros_like_p() -> None:
  # Removed from JAX. NT only uses it as a key of its structured-derivative
  # rule tables, so a fresh primitive that no traced program emits is harmless.
  if not hasattr(ad, "zeros_like_p"):
    ad.zeros_like_p = jax.extend.core.Primitive("zeros_like")


def _experimental_getattr(name: str):
  raise AttributeError(
      f"neural_tangents.experimental.{name} is unavailable: that package needs "
      "TensorFlow, which this project does not install (see amf.nt_compat).")


def _stub_experimental() -> None:
  """Stands in for `neural_tangents.experimental`, which needs TensorFlow.

  `neural_tangents/__init__` imports it unconditionally, and it imports
  `jax2tf`, hence TensorFlow, only to offer a TF port of the empirical NTK.
  Left alone where TensorFlow is installed, since the real package then works.
  """
  name = "neural_tangents.experimental"
  if name in sys.modules or importlib.util.find_spec("tensorflow"):
    return
  stub = types.ModuleType(name, "TensorFlow-only; stubbed by amf.nt_compat.")
  stub.__getattr__ = _experimental_getattr
  sys.modules[name] = stub


def apply() -> None:
  """Applies the patches neural-tangents needs; idempotent."""
  _patch_jax_core()
  _patch_jax_util()
  _patch_zeros_like_p()
  _stub_experimental()
