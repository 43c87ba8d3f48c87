"""python -m rmqstore.cli (what the test harnesses run)."""

from . import main

main(prog_name="rmqstore")
