"""The built-in demo: a test IdP (Entra- and Okta-shaped) and a mock LearnUpon, all on localhost."""
