"""`python -m ssjf` runs the command line."""

from ssjf.cli import main

main()
