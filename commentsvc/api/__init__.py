"""The JSON API: the public API for sites and the moderation API."""
