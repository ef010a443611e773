"""A small invoicing application on Flask, connected to Maestrano marketplaces by connected-objects."""
