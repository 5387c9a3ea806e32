"""The pair record: its schema, its operations, reading and writing pairs, storage, counts."""
