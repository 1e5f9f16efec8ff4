"""`python -m hftlab.cli`: the hftlab command, where the console script is not on PATH."""
from hftlab.cli import main

main()
