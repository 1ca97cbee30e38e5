"""Instances: what a user configures (spec, options) and how it is validated."""
