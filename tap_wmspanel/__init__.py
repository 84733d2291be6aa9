"""tap-wmspanel: the WMSPanel pull API (players, devices and daily statistics) as a Singer tap."""
