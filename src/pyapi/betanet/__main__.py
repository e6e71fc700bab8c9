import sys

from betanet.cli import main

sys.exit(main())
