"""ssl4rl_data: turn plain images into verifiable RL data (SSL4RL pretext tasks)."""

__version__ = "0.5.0"
