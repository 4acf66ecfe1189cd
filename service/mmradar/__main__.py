"""``python -m mmradar`` — the same as the ``mmradar`` console script."""

import sys

from .cli import main

sys.exit(main())
