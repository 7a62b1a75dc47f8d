"""Data side: demo synthesis, dataset index, HDF5 stores and torch datasets."""
