"""A model's variables: read from its package without running it, kept per deployment, checked on runs.

``types`` holds the records, ``formats`` reads the LUME dialects, ``locate``
finds the variables file in an archive, ``checks`` enforces inputs on runs
and ``mapping`` checks a deployment template's PV mapping.
"""

from lume_services.variables.types import NO_VARIABLES, Variable, Variables

__all__ = ["NO_VARIABLES", "Variable", "Variables"]
