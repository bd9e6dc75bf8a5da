"""The deep Q-learning practical: the mouse game as a gymnasium environment (``mouse_game``,
registered as "MouseGame-v0" on import), and how agents are scored (``evaluation``)."""
