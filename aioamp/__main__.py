"""``python -m aioamp``."""

from .cli import main

raise SystemExit(main())
