"""Weights files: their two HDF5 layouts, and the JSON sidecar beside each."""
