"""The conversations as pure transition tables: intake, reporter routing, the catalog."""
