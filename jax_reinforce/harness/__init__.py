"""The machinery around the algorithm: files, memory budgets, compilation and its caches, devices and processes,
the runner, checkpoints, evaluation, rendering, trackers and reports.

Imports ``core`` and nothing above it.
"""
