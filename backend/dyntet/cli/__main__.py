import sys

from dyntet.cli import main

sys.exit(main())
