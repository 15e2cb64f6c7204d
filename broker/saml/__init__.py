"""SAML protocol: hardened XML, in-process XML-DSig, the SP side (upstream) and the IdP side (portals)."""
