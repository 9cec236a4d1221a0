"""``python -m benchmarks`` is ``npae bench``."""

import sys

from .suite import main

sys.exit(main())
