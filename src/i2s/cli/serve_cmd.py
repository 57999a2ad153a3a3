"""``i2s serve``: the web app on a local port."""

from __future__ import annotations

import ipaddress

import click

from i2s.cli.common import load_2d_generator, pick_device
from i2s.cli.generate3d_cmd import load_3d_generator
from i2s.cli.messages import info
from i2s.cli.options import device_option, model_option
from i2s.errors import I2SError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (anything but loopback exposes the app to the "
                   "network; a warning says so).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@model_option
@click.option("--model-3d", "model_3d", default="demo-3d", show_default=True,
              help="GET3D model of the 3D tab (registry name or file), or 'none'.")
@click.option("--data", type=click.Path(file_okay=False), default=None,
              help="Where jobs and results are kept [default: $I2S_HOME/web].")
@click.option("--jobs", "workers", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Embeddings running at once (1 on a CPU: one already uses every core).")
@device_option
def serve_command(host, port, model, model_3d, data, workers, device) -> int:
    """Serve the web page and its API (/api, OpenAPI at /docs): upload photos, watch them being
    embedded, edit them with sliders."""
    try:
        import uvicorn  # noqa: PLC0415

        from i2s.web.app import create_app  # noqa: PLC0415
    except ImportError as e:
        raise I2SError(f"i2s serve needs the web extra: pip install -e \".[web]\" ({e.name} "
                       "is missing)") from None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        info(f"warning: listening on {host}: anyone who can reach this address can use the app")
    dev = pick_device(device)
    G = load_2d_generator(model, dev)
    G3 = None if model_3d == "none" else load_3d_generator(model_3d, dev)
    app = create_app(G, data, workers, G3=G3)
    click.echo(f"i2s serving {model} on http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
