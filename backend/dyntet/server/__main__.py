"""``python -m dyntet.server ARGS`` is ``dyntet serve ARGS``."""

import sys

from dyntet.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
