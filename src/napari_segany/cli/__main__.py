"""``python -m napari_segany.cli``: the console script."""

import sys

from . import main

sys.exit(main())
