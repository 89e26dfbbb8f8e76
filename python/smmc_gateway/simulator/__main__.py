"""``python -m smmc_gateway.simulator``: the ``simulate`` command on its own."""

import sys

from smmc_gateway.simulator.cli import main

sys.exit(main())
