"""Preference data: schemas, converters between them, and the sources they are built from."""
