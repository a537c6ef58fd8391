"""Benchmarks of relay against the sandbox (issue 8): `python -m bench [throughput|scale|all]`.

`throughput` (the default) compares a bare signalbot 2.2.1 echo bot with the real relay
(SQLite, and PostgreSQL when reachable) under a flood and under a paced load; `scale`
measures start-up, memory and the hot lookups on a database of 100 000 cases. Results go
to `bench/results/latest.json` (git-ignored); `docs/performance.md` explains the figures.

Everything runs on 127.0.0.1: the sandbox in this process, each system under test in a
child process of its own (`bench.child`), as signal-cli-rest-api and the bot would be.
"""

from __future__ import annotations

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
FORMAT = 1
"""Version of the JSON layout written to `latest.json`."""
