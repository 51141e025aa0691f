"""``python -m feeds`` is the ``portal-feeds`` command."""

from feeds.cli import main

raise SystemExit(main())
