"""Support console: Django admin for delivery timelines, with masked numbers."""
