"""Shared pieces of the quality measurements (mqar, niah, perplexity, lm_eval): synthetic data
with a parameter-keyed cache, corpus loading, tiny-model building and trained-model caching."""
