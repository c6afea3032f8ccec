"""The algorithm and its contract: the math, the network, rollouts, returns, losses, the training loop, environments, ``Config``.

Imports nothing of the layers above it (``harness``, ``app``).
"""
