"""The `rmqstore` command: demo, serve, cluster, inspect, bench, admin and completion.

    rmqstore --version
    rmqstore --log-level info --log-format json serve -c broker.conf
    python -m rmqstore admin clusterList -n 127.0.0.1:9876
"""

from __future__ import annotations

from pathlib import Path

import click

from .._version import __version__
from .admin import admin
from .bench import bench
from .cluster import cluster
from .demo import demo
from .inspect import inspect
from .logs import LEVELS, setup_logging
from .serve import serve

SHELLS = ("bash", "zsh", "fish")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="rmqstore")
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level (--log-level info).")
@click.option("--log-level", type=click.Choice(LEVELS), default=None,
              help="Least severe level logged. [default: warning]")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append the log to this file instead of stderr.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object per line (time, level, logger, message).")
def main(verbose: bool, log_level: str | None, log_file: Path | None, log_format: str) -> None:
    """rmqstore: RocketMQ's store, embedded, and a RocketMQ 4.x NameServer and Broker."""
    setup_logging(log_level or ("info" if verbose else "warning"), log_file, log_format)


@main.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(rmqstore completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(main, {}, "rmqstore", "_RMQSTORE_COMPLETE").source())


for _command in (demo, serve, cluster, inspect, bench, admin):
    main.add_command(_command)
