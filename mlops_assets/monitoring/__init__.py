"""Monitoring: inference log, performance on ground truth, drift, endpoint health."""
