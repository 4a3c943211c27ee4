"""Operator tooling, the top floor: the `opsdash` CLI, `opsdash up/down/status`, service control,
the local mail/webhook sinks and the model promotion commands.

It drives the product from outside, so it may import every other package; nothing imports it
except `tests/` and `bench/` (enforced by the import-linter contracts in `pyproject.toml`).
"""
