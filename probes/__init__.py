"""Probes: scripts that look inside a study's rounds to explain a finding (docs/results.md)."""
