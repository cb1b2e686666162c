"""napari widgets. The only part of the package that imports Qt or napari."""
