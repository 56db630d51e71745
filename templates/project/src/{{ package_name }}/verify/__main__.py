"""Entry point of ``python -m <package>.verify`` (see :mod:`.runner`)."""

import sys

from .runner import main

sys.exit(main())
