"""The web app (``i2s serve``): a page and a JSON API over the library — upload, embed with
live progress, edit. Needs the ``web`` extra (FastAPI, uvicorn, python-multipart)."""
