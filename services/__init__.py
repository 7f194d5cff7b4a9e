"""The seven services of the loop, one folder each."""
