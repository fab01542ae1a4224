"""Trajectories: records, crash-safe store, training rows and exports."""
