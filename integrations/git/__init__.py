"""The ``git`` integration: no API, just repositories (local paths or clone urls) for git processing."""
