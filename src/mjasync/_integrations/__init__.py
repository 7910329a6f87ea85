"""_integrations."""
