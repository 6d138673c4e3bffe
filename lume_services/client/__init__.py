"""The remote client: services that talk to a registry server over HTTP (LUME_REGISTRY__URL).

They return the same records and raise the same exception classes as the
local services, so ``Model``, the CLI and scripts work unchanged with a
token and no database settings.
"""
