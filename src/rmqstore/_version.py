"""The package version, read by setuptools and checked against the compiled module's stamp."""

__version__ = "0.1.0"
