"""``python -m wqkit.cli``: the wqkit command."""

import sys

from wqkit.cli import main

sys.exit(main())
