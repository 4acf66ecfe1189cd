"""``python -m mmradar.config --write | --check``: regenerate the files generated from the
configuration schema (:mod:`mmradar.config.render`)."""

import sys

from .render import main

sys.exit(main())
