"""Model-free evaluation harness: benchmark loaders and the official scoring rules."""
