"""Labeling: items sent to human labelers and the labeled sets their annotations become."""
