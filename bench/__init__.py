"""Benchmarks: each module is a command (`python -m bench.<name> --help`) that prints ratios against a
bare baseline measured in the same run and can record its figures in docs/benchmarks.md."""

import hub.cli  # noqa: F401 - the hub's --help conventions (a flag shows no "<bool>" type)
