"""The end-to-end demo: `python -m mlops_demo` (what `make demo` runs)."""
