"""Shared inference: fit any model factory by MAP, NUTS or ADVI; predict; recommend."""
