"""Benchmarks of Flask-Conversation: what a conversation costs a request.

Run ``python -m bench`` (``--help`` for the options). Every figure is a
ratio against a baseline measured in the same run, so that it holds on a
busy machine; absolute numbers are printed too and are machine-specific.
"""
