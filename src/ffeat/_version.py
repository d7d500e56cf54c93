"""The installed version (defined once, in meson.build)."""
from importlib import metadata

__version__ = metadata.version("ffeat")
