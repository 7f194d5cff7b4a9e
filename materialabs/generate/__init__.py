"""Candidate generation: SAPS substitution, AIRSS random search, dedup and validity filters."""
