"""The test suite (a regular package: a wheel that ships a top-level `tests` package, such as
optimade 1.5.0, would otherwise shadow this namespace package on `from tests... import`)."""
