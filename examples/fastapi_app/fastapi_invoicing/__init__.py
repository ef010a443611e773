"""A small invoicing application on FastAPI, connected to Maestrano marketplaces by connected-objects."""
