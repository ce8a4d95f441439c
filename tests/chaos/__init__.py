"""Real-process chaos testing of syncobj: `python -m tests.chaos --duration S --seed N` (see docs/chaos.md)."""
