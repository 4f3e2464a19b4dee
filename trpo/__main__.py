"""`python -m trpo`: the command line."""

import sys

from trpo.cli import main

if __name__ == "__main__":
    sys.exit(main())
