"""Benchmarks behind ``dsd bench CASE``: one module per case, each exposing
``register(subparsers)``. Every case measures its baseline in the same run and prints
ratios; ``--json`` prints one JSON object with each case and contender."""
