"""Worked examples (`python -m examples.<name>`)."""
