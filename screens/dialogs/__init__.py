"""Modal questions (the erase confirmation, cancelling an install)."""
