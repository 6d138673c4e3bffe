"""User-facing model API."""

from lume_services.models.model import Model

__all__ = ["Model"]
