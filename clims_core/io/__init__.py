"""Reading and writing artifacts: atomic files, checkpoints, masks, metrics."""
