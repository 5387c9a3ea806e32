"""The demo world with known truth, the demo pool, synthetic pairs, tiny models."""
