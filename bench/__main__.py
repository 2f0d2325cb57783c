"""``python -m bench`` runs the idbench command line."""

from bench.cli import main

raise SystemExit(main())
