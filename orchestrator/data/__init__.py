"""The data pipeline: raw counseling corpora to the task's SFT dataset."""
