"""Bradley-Terry training on Ray Train + DeepSpeed."""
