"""`python -m scenarist` runs the CLI with this interpreter."""

from scenarist.cli.main import main

main()
