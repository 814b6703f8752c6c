"""The demo / development project for django-sms-delivery (not shipped)."""
