"""dd2601: the LAB1 platform's command-line client (a thin layer over the REST API at /api/v1/)."""

__version__ = "0.1.0"
