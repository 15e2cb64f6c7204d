"""SCIM 2.0 bridge: identity providers push users and groups; the broker drives every LearnUpon portal's API."""
