"""Model development: a candidate trained on a training set version, and the gates judging it."""
