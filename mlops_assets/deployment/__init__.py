"""Deployment: staging with endpoint tests, human approval, blue/green production, batch scoring."""
