"""portal-feeds: fetch external data for public portals and publish it as JSON snapshots."""

__all__ = ["__version__"]

__version__ = "0.1.0"
