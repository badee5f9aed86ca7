"""Data: readers of benchmark formats, datamodules, synthetic generators and audio I/O."""
