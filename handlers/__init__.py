"""Signal-facing handlers and the pure conversation flows."""
