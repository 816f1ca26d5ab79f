"""``python -m vid2act.agents``: the same command list as ``python -m vid2act``."""

import sys

from vid2act.agents.commands import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m vid2act.agents"))
