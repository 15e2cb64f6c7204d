"""Flask blueprints, one per area of URLs. Views translate HTTP to domain calls and back, nothing more."""
