"""tap-headspin: the HeadSpin Usage API as a Singer tap."""
