"""Delivery records, lifecycle and webhook ingest for django-sms-delivery."""

__version__ = "0.1.0"
