"""``python -m lume_services.cli``: the same as the ``lume-services`` command."""

from lume_services.cli import main

main()
