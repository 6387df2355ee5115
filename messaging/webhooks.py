"""Bounce and complaint webhooks (django-anymail's tracking signal): written next."""
