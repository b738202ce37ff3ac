"""olmoctl: launch, track and resume OLMo-style pretraining on Slurm clusters."""

__version__ = "0.1.0"
