"""``python -m bgeq_utils``: the ``bgeq`` command line without its console script."""
import sys

from bgeq_utils.cli.main import main

sys.exit(main())
