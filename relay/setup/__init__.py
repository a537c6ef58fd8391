"""Setting an organisation up: `relay init`, `relay db upgrade`, `relay groups create`."""
