"""The `lume-services` command line.

The click group is :data:`lume_services.cli.main.cli`, imported only when the
console script runs; each command group lives in its own module.
"""


def main() -> None:
    from lume_services.cli.main import cli

    cli()
