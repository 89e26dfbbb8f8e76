"""`python -m smmc_gateway.cli`."""

import sys

from smmc_gateway.cli import main

sys.exit(main())
