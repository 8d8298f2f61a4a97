import sys

from rsa_bridge.cli import main

sys.exit(main())
