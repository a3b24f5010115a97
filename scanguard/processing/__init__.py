"""Per-file work (DESIGN §9): processors that read a file's tags, size or streams, run under a deadline."""
