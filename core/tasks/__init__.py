"""Task-specific features, post-processing and metrics."""
