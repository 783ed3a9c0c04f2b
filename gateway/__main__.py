"""`python -m gateway ...` is the same as the `inkstream` console script."""

from gateway.cli import main

raise SystemExit(main())
