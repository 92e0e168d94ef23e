"""``python -m isosched`` runs the command line."""

from isosched.cli import main

main()
