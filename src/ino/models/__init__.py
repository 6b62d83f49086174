"""Backbones, projection heads and the EMA teacher."""
