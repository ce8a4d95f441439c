"""``python -m syncobj.lincheck check FILE...`` (the same command as ``python -m sim check``)."""

import sys

from .cli import main

sys.exit(main())
