"""Pretext tasks, one module each; every module here is discovered by `ssl4rl_data.registry`."""
