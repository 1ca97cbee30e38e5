"""The web part: routes are thin; services do the work; errors are mapped in one place."""
