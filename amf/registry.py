"""Look-up of interchangeable parts registered by name, with one clear error."""
from typing import Mapping, TypeVar

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, what: str) -> T:
  """`registry[name]`, or a ValueError naming `what` was asked for and the choices."""
  if name not in registry:
    raise ValueError(f"Unknown {what} {name!r}; choose one of {sorted(registry)}.")
  return registry[name]
