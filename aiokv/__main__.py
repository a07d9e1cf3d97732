"""`python -m aiokv` is the `aiokv` command."""

from aiokv.cli import main

raise SystemExit(main())
