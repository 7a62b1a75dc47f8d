"""Neural models: the CRNN over log-mels and the causal learned temporal model."""
