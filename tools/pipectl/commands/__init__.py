"""CLI command groups, one module each, loaded lazily by pipectl.cli."""
