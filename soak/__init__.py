"""`make soak`: the long reliability runs (see run.py)."""
