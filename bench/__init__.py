"""Benchmarks: `python -m bench` runs them all and prints one table (see `bench/__main__.py`).

Every figure is printed beside the LlamaIndex out-of-the-box pipeline (same corpus, same MiniLM
model) measured in the same run, so the ratio holds on a noisy machine.
"""
