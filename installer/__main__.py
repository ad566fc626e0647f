import sys

from installer.cli.main import main

sys.exit(main())
