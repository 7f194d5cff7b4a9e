"""MateriaLabs: an event-driven platform for discovering new crystalline materials."""

__version__ = "0.1.0"
