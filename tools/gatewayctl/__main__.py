"""`python -m gatewayctl ...`: see `gatewayctl.cli`."""

from gatewayctl.cli import main

raise SystemExit(main())
