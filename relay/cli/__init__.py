"""The `relay` command line."""
