"""Tests of i2s.get3d."""
