"""Backends: Slurm (through submitit where it fits), local processes, SSH."""
