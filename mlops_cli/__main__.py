"""`python -m mlops_cli`: the `mlops` command, for environments without the script."""

import sys

from mlops_cli import main

sys.exit(main())
