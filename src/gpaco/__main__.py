import sys

from gpaco.cli import main

sys.exit(main())
