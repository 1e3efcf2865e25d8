"""Benchmarks: scripts that time the project's programs and print figures (docs/speed.md)."""
