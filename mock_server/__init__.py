"""A stateful mock of Kaleyra's RCS agent API (IN and NA pods).

`mock_server.core` is the pure logic, `mock_server.web.create_app` the Flask app,
`kaleyra-mock` (or `python -m mock_server`) the server.
"""

__all__ = ["__version__"]

__version__ = "0.8.0"
