"""jax-reinforce: the softmax derivative proven, and REINFORCE on CartPole in one jit."""
