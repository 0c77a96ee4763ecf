"""Tests that drive the examples in a real browser."""
