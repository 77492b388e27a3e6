"""Media: storage backends, the media route and uploads."""
