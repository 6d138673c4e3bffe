"""lume-services: a registry and runner for particle-accelerator models.

Importing this package is cheap: it pulls in neither SQLAlchemy drivers nor
Prefect. Use :mod:`lume_services.config` to configure, and
:class:`lume_services.models.Model` for the user-facing API.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
