"""The operator page of the reference station (aiohttp)."""
