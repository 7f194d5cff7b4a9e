import sys

from materialabs.cli import main

sys.exit(main())
