"""Measurements the chapters plot: scores, linear probes, gradients."""
