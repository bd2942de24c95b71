"""``python -m keyplane``: the same command line as ``keyplane``."""

from keyplane.cli.main import main

main()
