"""Inkstream gateway: the Starlette app (y-websocket endpoint, HTTP API, web app) and the CLI."""
