"""bindistro: run the release cycle of a binary distribution built with the Yocto Project."""
__version__ = "0.1.0"
