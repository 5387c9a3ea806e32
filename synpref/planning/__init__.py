"""Budgets from a pilot run: per-step rates and acceptance rates read from its stats.json files,
scaled to a target pool on a cluster's node kinds (jobs/plan.py)."""
