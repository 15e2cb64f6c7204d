"""SAML broker for LearnUpon: SP-initiated login in, signed IdP-initiated assertion out."""

__version__ = "0.1.0"
