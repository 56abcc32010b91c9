"""`python -m converter INPUT OUTPUT_DIR`."""

import sys

from converter.cli import main

sys.exit(main())
