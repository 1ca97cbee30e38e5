"""Watching llamactl and its host: system status, host samples and alerts, GPUs, metrics."""
