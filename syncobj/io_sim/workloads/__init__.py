"""Checked workloads for the simulator: targets and calls (`spec`), clients, and the batteries."""
