"""Reference systems every results table carries beside the package's models."""
