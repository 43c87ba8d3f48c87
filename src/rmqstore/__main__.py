"""python -m rmqstore: the `rmqstore` command."""

from .cli import main

main(prog_name="rmqstore")
