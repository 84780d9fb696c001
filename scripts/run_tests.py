"""Run the test suite; pytest's "no tests collected" (exit 5) counts as a failure."""
import sys

import pytest

if __name__ == "__main__":
    code = pytest.main(["tests", *sys.argv[1:]])
    sys.exit(1 if code == 5 else int(code))
