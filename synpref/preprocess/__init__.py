"""Pre-processing: raw records in, parsed pairs, filters that decide keep or drop."""
