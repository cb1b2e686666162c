"""``python -m napari_segany``: napari with the plugin's widget on an offline sample image."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import napari

    args = sys.argv[1:] if argv is None else argv
    viewer = napari.Viewer(title="napari-segany")
    if args:
        viewer.open(args)
    else:
        viewer.open_sample("napari-segany", "cell")
    viewer.window.add_plugin_dock_widget("napari-segany", "Segment Anything")
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
