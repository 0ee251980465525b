"""Golden models: NumPy descriptions of what each core must produce, integer for integer."""
