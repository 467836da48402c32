"""Monitoring: data and prediction drift against a reference profile stored at training."""
