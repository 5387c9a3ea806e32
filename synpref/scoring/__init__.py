"""Reward-model scoring of pairs on Ray Data (transformers and vLLM backends)."""
