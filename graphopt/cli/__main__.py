"""`python -m graphopt.cli ...` is `graphopt ...`."""

import sys

from graphopt.cli import main

sys.exit(main())
