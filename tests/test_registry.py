"""The look-up of parts registered by name (`amf/registry.py`)."""
import pytest

from amf import registry


def test_registry_lookup_error_lists_the_choices():
  with pytest.raises(ValueError, match=r"Unknown widget 'c'; choose one of \['a', 'b'\]"):
    registry.lookup({"b": 2, "a": 1}, "c", "widget")
  assert registry.lookup({"a": 1}, "a", "widget") == 1
