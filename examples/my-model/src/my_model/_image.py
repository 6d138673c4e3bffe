"""The container image that runs this package's flow (predecessor convention)."""

from my_model import __version__

IMAGE = f"registry.example.org/slac/my-model:v{__version__}"
