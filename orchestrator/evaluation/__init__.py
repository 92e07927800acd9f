"""Scoring models on the task itself: prompts, decoding, JSON extraction, metrics."""
