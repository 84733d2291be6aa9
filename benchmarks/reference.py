"""The reference: the least any client must do to get each benchmarked stream, with `requests` + `orjson`.

One small function per vendor fetches every page, window and partition the API needs (the same
endpoints, auth and windows as the tap, from the same settings) and writes one JSON line per record,
shaped exactly as the tap emits it, so that the benchmark can check the two agree record for record.
Nothing else: no schema, no retries, no Singer envelope. It trusts the emulator's documented formats
where the tap must tolerate others, which is the point: the gap is the tap's overhead.

Run as `python -m benchmarks.reference VENDOR CONFIG_JSON > out.jsonl`.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import orjson
import requests

Record = dict[str, Any]
Write = Callable[[Record], None]
UTC = dt.timezone.utc
ONE_SECOND = dt.timedelta(seconds=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
TIMEOUT = 300


# --- what every reference shares ----------------------------------------------------------------


def instant(text: str) -> dt.datetime:
    """A setting's date or datetime as an aware UTC datetime (naive is UTC)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_text(moment: dt.datetime) -> str:
    """The taps' one timestamp form: `2024-05-01T12:00:00.000000+00:00`."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def windows(
    start: dt.datetime, end: dt.datetime, size: dt.timedelta
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Consecutive [start, end) windows of at most `size`, as the tap's window settings ask."""
    while start < end:
        stop = min(start + size, end)
        yield start, stop
        start = stop


def epoch_ms(moment: dt.datetime) -> int:
    """Exact epoch milliseconds."""
    return (moment - EPOCH) // dt.timedelta(milliseconds=1)


def get_json(session: requests.Session, url: str, params: Mapping[str, Any] | None = None) -> Any:  # noqa: ANN401
    """One GET, its body decoded; any HTTP error ends the run (the benchmark reports it)."""
    response = session.get(url, params=params, timeout=TIMEOUT)
    response.raise_for_status()
    return orjson.loads(response.content)


def milliseconds(value: float) -> float | int:
    """A duration as the tap writes it: whole numbers as integers."""
    number = float(value)
    return int(number) if number.is_integer() else number


# --- one reference per vendor -------------------------------------------------------------------


def unleash(session: requests.Session, config: Mapping[str, Any], write: Write) -> None:
    """Devices, then per device and window every page of the size-optimized route, keys zipped."""
    base = config["api_url"]
    session.headers["Authorization"] = f"Bearer {config['access_token']}"
    size = dt.timedelta(days=float(config["window_days"]))
    spans = list(windows(instant(config["start_date"]), instant(config["end_date"]), size))
    for device in get_json(session, f"{base}/analytics/devices"):
        for start, end in spans:
            low, high = utc_text(start), utc_text(end)
            from_ms, to_ms = epoch_ms(start) - 1, epoch_ms(end)  # 1 ms wider: ends' inclusion is undocumented
            page, pages = 1, 1
            while page <= pages:
                body = get_json(session, f"{base}/analytics/{device}/{from_ms}/{to_ms}/{page}")
                pages, keys = body["total_num_pages"], body["keys"]
                for row in body["data"]:
                    record = dict(zip(keys, row))
                    served = record["timestamp"]  # 2020-08-17T06:16:45.000Z
                    record["timestamp"] = stamp = f"{served[:23]}000+00:00"
                    if low <= stamp < high:
                        write(record)
                page += 1


HEADSPIN_EVENT_FIELDS = (
    "user", "email", "team", "device_id", "hostname", "start_time", "end_time", "duration", "date",
)  # fmt: skip


def headspin(session: requests.Session, config: Mapping[str, Any], write: Write) -> None:
    """Usage events, one request per window of whole UTC days, times read as UTC."""
    url = f"{config['api_url']}/v2/usage/event"
    session.headers["Authorization"] = f"Bearer {config['api_token']}"
    size = dt.timedelta(days=int(config["events_window_days"]))
    for start, end in windows(instant(config["start_date"]), instant(config["end_date"]), size):
        after_last = end.date() + dt.timedelta(days=0 if end.time() == dt.time(0) else 1)
        params = {"start_date": start.date().isoformat(), "end_date": after_last.isoformat()}
        body = get_json(session, url, {**params, "timezone": "UTC", "format": "json"})
        low, high = utc_text(start), utc_text(end)
        for row in body["report"]:
            started = f"{row['start_time'].replace(' ', 'T')}.000000+00:00"  # 2025-01-01 00:00:00, UTC
            if not low <= started < high:
                continue
            record = {name: row.get(name) for name in HEADSPIN_EVENT_FIELDS}
            record["start_time"] = started
            record["end_time"] = f"{row['end_time'].replace(' ', 'T')}.000000+00:00"
            record["device_address"] = f"{row['device_id']}@{row['hostname']}"
            record["extra_fields"] = {k: v for k, v in row.items() if k not in HEADSPIN_EVENT_FIELDS}
            write(record)


SEEMETRIX_GENDERS = ("female", "male", "undefined")
SEEMETRIX_AGES = ("adult", "kid", "old", "undefined", "young")


def seemetrix(session: requests.Session, config: Mapping[str, Any], write: Write) -> None:
    """The devices/dates/genders/ages tree, per window of whole days and page, one row per leaf."""
    url = f"{config['api_url']}/v2/statistics/user/{config['user_id']}/devices/dates/genders/ages/"
    query = {
        "key": config["user_key"],
        "tzo": 0,
        "dt_format": "YYYY-MM-DD",
        "to_object": 0,
        "obj_in_page": int(config["tree_devices_per_page"]),
    }
    first = instant(config["start_date"]).replace(hour=0, minute=0, second=0, microsecond=0)
    size = dt.timedelta(days=float(config["window_days"]))
    for start, end in windows(first, instant(config["end_date"]), size):
        # A second wider at the start: which ends `b`/`e` include is undocumented.
        bounds = {"b": f"{start - ONE_SECOND:%Y/%m/%d %H:%M:%S}", "e": f"{end:%Y/%m/%d %H:%M:%S}"}
        page, pages = 0, 1
        while page < pages:
            body = get_json(session, url, {**query, **bounds, "page": page})
            pages = body["pages_total"]
            for row in seemetrix_rows(body["data"], utc_text(start), utc_text(end)):
                write(row)
            page += 1


def seemetrix_rows(root: Mapping[str, Any], low: str, high: str) -> Iterator[Record]:
    """The leaves of the dates in [low, high); zeros where the API stopped decomposing (no views).

    The tap writes those zero leaves too, so that every device-date has its full grid.
    """
    for device in root["o"]:
        for date in device["o"]:
            period_start = f"{date['n']}T00:00:00.000000+00:00"
            if not low <= period_start < high:
                continue
            common = {
                "device_id": int(device["n"]),
                "date": date["n"],
                "period_start": period_start,
                "ots": round(date["ots"]),
                "ots_duration_ms": milliseconds(date["otsd"]),
            }
            for gender in date["o"] or [{"n": name, "v": 0, "o": []} for name in SEEMETRIX_GENDERS]:
                for age in gender["o"] or [{"n": name, "v": 0, "vd": 0} for name in SEEMETRIX_AGES]:
                    yield {
                        **common,
                        "gender": gender["n"],
                        "age_group": age["n"],
                        "views": round(age["v"]),
                        "views_duration_ms": milliseconds(age["vd"]),
                    }


OPENSPACE_FIELDS = {
    "videoId": "video_id",
    "videoStart": "video_start",
    "videoNumberOfFrames": "video_number_of_frames",
    "siteId": "site_id",
    "siteName": "site_name",
    "userEmail": "user_email",
    "week": "week",
}


def openspace(session: requests.Session, config: Mapping[str, Any], write: Write) -> None:
    """Every page of the 360-videos report, newest first, until the body says it was the last."""
    url = f"{config['api_url']}/api/external/v1/reports/360-videos"
    session.headers["api-key"] = config["api_key"]
    page, last = 0, False
    while not last:
        body = get_json(session, url, {"page": page, "size": config["page_size"], "sort": "videoStart,DESC"})
        for item in body["content"]:
            record = {name: item.get(key) for key, name in OPENSPACE_FIELDS.items()}
            served = record["video_start"]  # 2024-05-01T12:00:00Z or 2024-05-01T12:00:00.250Z
            fraction = served[20:-1] if len(served) > 20 else ""  # noqa: PLR2004
            record["video_start"] = f"{served[:19]}.{fraction:0<6}+00:00"
            write(record)
        last = body["last"]
        page += 1


def wmspanel(session: requests.Session, config: Mapping[str, Any], write: Write) -> None:
    """Data slices, then one players_stats call per slice for the whole range, days un-pivoted."""
    base = config["api_url"]
    session.params = {"client_id": config["client_id"], "api_key": config["api_key"]}
    first, last = config["start_date"][:10], config["end_date"][:10]
    listing = get_json(session, f"{base}/data_slices", {"show_servers": "true"})
    for data_slice in listing["data_slices"]:
        slice_id = str(data_slice["id"])
        body = get_json(session, f"{base}/players_stats", {"data_slice": slice_id, "from": first, "to": last})
        for day in body["stats"]:
            date = day["date"]
            if not first <= date <= last:
                continue
            for player, connections in day.items():
                if player != "date":
                    write(
                        {
                            "data_slice_id": slice_id,
                            "date": date,
                            "player": player,
                            "connections": connections,
                            "server_id": None,
                        }
                    )


REFERENCES: dict[str, Callable[[requests.Session, Mapping[str, Any], Write], None]] = {
    "unleash": unleash,
    "headspin": headspin,
    "seemetrix": seemetrix,
    "openspace": openspace,
    "wmspanel": wmspanel,
}


def run(vendor: str, config: Mapping[str, Any], out: IO[bytes]) -> None:
    """Run one vendor's reference, writing its records as JSON lines to `out`."""
    dumps = orjson.dumps

    def write(record: Record) -> None:
        out.write(dumps(record) + b"\n")

    with requests.Session() as session:
        REFERENCES[vendor](session, config, write)
    out.flush()


def main(argv: list[str]) -> int:
    """`python -m benchmarks.reference VENDOR CONFIG_JSON`."""
    vendor, config_path = argv
    with open(config_path, "rb") as config_file:
        config = orjson.loads(config_file.read())
    run(vendor, config, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
