"""``python -m spikeforge.cli``: the same as the ``spikeforge`` command."""

import sys

from . import main

sys.exit(main())
