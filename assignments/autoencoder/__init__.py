"""The autoencoder practical: its course data (``data``)."""
