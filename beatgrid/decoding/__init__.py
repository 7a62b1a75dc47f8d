"""Decoders: from beat and downbeat activations to beat times, downbeats and beatgrids.

``peaks`` (calibration and peak picking, the primitive the others and training build on),
``dbn`` (bar-pointer HMM), ``grid`` (constant-tempo beatgrids) and ``streaming`` (online tracking).
"""
