"""Consent enforcement, audience exports, k-anonymous reports and the audit log."""
