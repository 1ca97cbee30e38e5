"""The version of both distributions (``llamactl-server`` and ``llamactl-client``), in one
place; kept a constant rather than read from the installed metadata, which costs an import of
``importlib.metadata`` on every command-line call."""

__version__ = "0.1.0"
