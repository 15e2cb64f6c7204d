"""Running the service: metrics and logs, audit events, configuration reload."""
