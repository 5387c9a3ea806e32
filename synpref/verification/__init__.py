"""Human verification for D_gold: export, verdicts, merge, agreement."""
