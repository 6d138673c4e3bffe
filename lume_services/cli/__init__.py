"""The `lume-services` command line (filled in by lume_services.cli.main)."""


def main() -> None:
    from lume_services.cli.main import cli

    cli()
