"""Audience exports, k-anonymous reports, retention and data-subject requests (the consent rules they apply live in
assets/consent.py, shared with scoring)."""
