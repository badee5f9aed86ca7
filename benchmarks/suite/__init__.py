"""The benchmark suite's cases (``python benchmarks/run.py``): each module's ``CASES`` maps a name
to a function ``(Settings) -> list[Row]``."""
