"""Stage 1, Stage 2 and the curation report."""
