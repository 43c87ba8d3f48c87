"""The `rmqstore admin` command group; its commands register themselves in the modules beside."""

from __future__ import annotations

import click


@click.group()
def admin() -> None:
    """mqadmin's commands, under mqadmin's names and flags (-n or NAMESRV_ADDR), with --json on
    each, tables on a terminal and plain columns when piped, and exit status 1 on failure."""
