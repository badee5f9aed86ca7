"""Small shared helpers (errors, run folders, Hydra glue)."""
