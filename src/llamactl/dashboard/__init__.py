"""The web dashboard at ``/``: a static page and plain JavaScript that talk to ``/api`` like
any other client (page.py mounts them)."""
