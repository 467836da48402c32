"""Contact sheets: a few images as one inline PNG, for asset metadata in the UI."""

from __future__ import annotations

import base64
import io


def contact_sheet(pngs: list[bytes], columns: int = 8, scale: int = 2) -> str:
    """Markdown with the images tiled in a grid (grey or colour, any size, first 64)."""
    from PIL import Image

    tiles = [Image.open(io.BytesIO(p)).convert("L") for p in pngs[:64]]
    if not tiles:
        return "(no images)"
    width = max(t.width for t in tiles) * scale
    height = max(t.height for t in tiles) * scale
    rows = -(-len(tiles) // columns)
    sheet = Image.new("L", (columns * width, rows * height), 255)
    for i, tile in enumerate(tiles):
        resized = tile.resize((width, height), Image.Resampling.NEAREST)
        sheet.paste(resized, ((i % columns) * width, (i // columns) * height))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return (
        f"![{len(tiles)} images](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"
    )
