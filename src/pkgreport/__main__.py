"""`python -m pkgreport` runs the command line."""

from pkgreport.cli import main

main()
