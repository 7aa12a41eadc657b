"""Use cases as plain functions; each write is one transaction that commits or raises."""
