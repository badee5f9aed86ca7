"""One file per Hydra-composed command, each runnable as a script or a module: what Lightning
starts again in each extra DDP process (it re-runs ``sys.argv[0]``, or ``python -m`` the main
module), so that those processes run the same command with the same arguments."""
