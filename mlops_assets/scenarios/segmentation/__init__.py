"""Segmentation scenario: nuclei in a fluorescence microscopy image (stardist's sample, U-Net).

Pure code only so far (source, tile format, model functions, training entry
point); nothing here imports Dagster, torch or mlflow at import time.
"""
