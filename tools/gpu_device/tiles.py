# Shared by the tile-order tools (tile_order.py, tile_costs.py): per-tile sizes of a planned batch.
import array


def tile_input_sizes(views, records, tiles):
    """Compressed bytes of every tile, by batch tile index (format doc §1: table entry 0 is the
    last tile's size, entry i > 0 tile i's offset)."""
    sizes = [0] * tiles
    for idx, _at, _ln, _out, p, base in records:
        n = p.num_tiles
        table = array.array("I", bytes(views[idx][8: 8 + 4 * n]))
        for i in range(n - 1):
            sizes[base + i] = (table[i + 1] - (table[i] if i else 0)) & 0xFFFFFFFF
        sizes[base + n - 1] = table[0]
    return sizes
