"""`python -m harness`: the same command as `tfjs-certify`."""

import sys

from harness.cli import main

sys.exit(main())
