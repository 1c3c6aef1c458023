"""Numerics shared by two or more models: attention, masks, activations."""
