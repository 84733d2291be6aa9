"""tap-openspace: the OpenSpace Usage API as a Singer tap."""
