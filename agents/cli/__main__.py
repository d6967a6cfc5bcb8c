"""``python -m podium.agents.cli``: the ``podium`` command."""

import sys

from podium.agents.cli import main

sys.exit(main())
