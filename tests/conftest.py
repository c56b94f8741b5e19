"""Test-wide settings: hypothesis runs derandomized and without deadlines (shared, noisy CI)."""
from hypothesis import settings

settings.register_profile("pyconv1d", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("pyconv1d")
