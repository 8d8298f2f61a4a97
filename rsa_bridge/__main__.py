import sys

from rsa_bridge.app.cli import main

sys.exit(main())
