"""Accounts, password hashing, JWT access and rotating refresh tokens, OAuth, RBAC."""
