"""pkgreport: reconcile clinic pre-paid packages and account credit from practice-management exports."""

__version__ = "0.1.0"
