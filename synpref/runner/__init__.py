"""Running jobs: run folders, steps, tracking, typed errors."""
