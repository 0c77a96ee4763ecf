"""Hardening tests: hostile input, store faults, load and soak."""
