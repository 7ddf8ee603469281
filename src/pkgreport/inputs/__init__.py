"""The input layer: export files -> typed frames and the issues a practice manager must fix."""
