from rsa_bridge.app.cli import run

run()
