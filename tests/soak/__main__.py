"""``python -m soak`` (with ``tests/`` on ``sys.path``; ``make soak`` sets it)."""

from __future__ import annotations

import sys

from .soak import main

sys.exit(main())
