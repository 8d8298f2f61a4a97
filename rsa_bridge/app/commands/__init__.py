"""One module per ``rsa-bridge`` sub-command (see :data:`rsa_bridge.app.cli.COMMANDS`)."""
