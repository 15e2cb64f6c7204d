"""Pure rules the login pipeline applies: routing to portals, deep-link targets, name matching."""
