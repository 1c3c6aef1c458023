"""The model core: base class, weight loading, outputs, heads, initialisation."""
