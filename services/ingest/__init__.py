"""The ingest service: handlers.py holds its logic, app.py wires it to a transport."""
