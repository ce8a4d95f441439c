"""`python -m sim`: the command-line front of the simulator (`syncobj.io_sim`).  See sim/cli.py."""
