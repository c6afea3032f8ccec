"""The entry points: a whole run in a run directory (``train_run``), sweeps, the defaults search, the command line's plumbing.

Imports ``core`` and ``harness``; only ``scripts/`` sit above it.
"""
