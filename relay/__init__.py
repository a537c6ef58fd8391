"""relay: a secure conduct-reporting relay on Signal."""
