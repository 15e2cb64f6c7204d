"""Admin and operator tools built on the login pipeline: check, simulate, the flow tester, portal setup."""
