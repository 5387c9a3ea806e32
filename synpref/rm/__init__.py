"""Reward models: input formatting, weight resolution, the inference core."""
