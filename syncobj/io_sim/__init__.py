"""The simulated world: a seeded virtual clock, network, disks, faults, clients and checkers.

Start at `runner.run` (one fault-injection run of bare Raft kernels) or `world.World` (the
world itself); docs/simulator.md describes the fault model, the invariants and the trace.
Nothing here is imported eagerly, so drivers can import just the pieces they use.
"""
