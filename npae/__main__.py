"""``python -m npae`` is the ``npae`` command."""

import sys

from npae.cli import main

sys.exit(main())
