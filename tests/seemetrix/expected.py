"""What tap-seemetrix should emit, worked out from the emulator's sessions without the tap's code.

Each function states the meaning of a stream in a few lines of plain Python over the emulator's
ground truth (`SeemetrixEmulator.truth_sessions`), with its own code tables, so a test that
compares the tap's records with these checks the tap and the emulator against one written
description rather than against each other.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from collections import defaultdict

from taps_common.timestamps import to_utc_iso

if t.TYPE_CHECKING:
    from emulators.seemetrix import SeemetrixEmulator

AGES = {-1: "undefined", 0: "kid", 1: "young", 2: "adult", 3: "old"}
GENDERS = {-1: "undefined", 0: "female", 1: "male"}
EMOTIONS = {-1: "undefined", 0: "neutral", 1: "happy", 2: "angry", 3: "surprise"}
AGE_COLUMNS = {-1: "undefined_age", 0: "kid", 1: "young", 2: "adult", 3: "old"}
GENDER_COLUMNS = {-1: "undefined_gender", 0: "female", 1: "male"}


def iso(moment: dt.datetime) -> str:
    return to_utc_iso(moment)


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def session_record(session: dict[str, t.Any]) -> dict[str, t.Any]:
    """A truth session as the `sessions` stream should emit it."""

    def with_offsets(pairs: list[tuple[t.Any, int]], name: str, convert: t.Callable[[t.Any], t.Any]) -> list[dict]:
        rows, offset = [], 0
        for value, duration in pairs:
            rows.append({name: convert(value), "offset_ms": offset, "duration_ms": duration})
            offset += duration
        return rows

    return {
        "device_id": session["device_id"],
        "session_number": session["session_number"],
        "started_at": iso(session["start"]),
        "ended_at": iso(session["end"]),
        "duration_ms": session["duration_ms"],
        "age_group": AGES[session["age"]],
        "gender": GENDERS[session["gender"]],
        "attention_intervals": with_offsets(session["attention"], "looking", lambda a: a == 1),
        "emotion_intervals": with_offsets(session["emotions"], "emotion", EMOTIONS.__getitem__),
        "movies": [
            {"movie_id": movie, "offset_ms": offset, "duration_ms": duration}
            for movie, offset, duration in session["movies"]
        ],
    }


def hourly_records(sessions: list[dict[str, t.Any]], *, per_device: bool, user_id: int) -> list[dict[str, t.Any]]:
    """One row per hour (and device) holding any session; counters over the sessions that looked."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for session in sessions:
        key = (session["device_id"] if per_device else user_id, hour_of(session["start"]))
        groups[key].append(session)
    rows = []
    for (owner, hour), group in sorted(groups.items()):
        views = [session for session in group if session["viewed"]]
        row: dict[str, t.Any] = {"device_id" if per_device else "user_id": owner, "period_start": iso(hour)}
        row["views"] = len(views)
        for code, column in GENDER_COLUMNS.items():
            row[column] = sum(session["gender"] == code for session in views)
        for code, column in AGE_COLUMNS.items():
            row[column] = sum(session["age"] == code for session in views)
        for gender, gender_column in GENDER_COLUMNS.items():
            for age, age_column in AGE_COLUMNS.items():
                row[f"{gender_column}_{age_column}"] = sum(
                    session["gender"] == gender and session["age"] == age for session in views
                )
        row["movie_views"] = sum(len(session["movies"]) for session in views)
        row["movie_views_va"] = sum(bool(session["movies"]) for session in views)
        duration = sum(session["duration_ms"] for session in views)
        row["average_view_duration_seconds"] = round(duration / len(views) / 1000, 2) if views else 0.0
        rows.append(row)
    return rows


def _device_days(sessions: list[dict[str, t.Any]]) -> dict[tuple[int, str], list[dict]]:
    days: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for session in sessions:
        days[(session["device_id"], session["start"].date().isoformat())].append(session)
    return days


def demographic_records(sessions: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """For each device-day with any session, all 15 gender x age cells (zeros included)."""
    rows = []
    for (device_id, day), group in sorted(_device_days(sessions).items()):
        views = [session for session in group if session["viewed"]]
        for gender in GENDERS:
            for age in AGES:
                cell = [session for session in views if session["gender"] == gender and session["age"] == age]
                rows.append(
                    {
                        "device_id": device_id,
                        "date": day,
                        "period_start": iso(dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)),
                        "gender": GENDERS[gender],
                        "age_group": AGES[age],
                        "views": len(cell),
                        "views_duration_ms": sum(session["duration_ms"] for session in cell),
                        "ots": len(group),
                        "ots_duration_ms": sum(session["duration_ms"] for session in group),
                    }
                )
    return rows


def emotion_records(sessions: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """For each device-day, five emotions: a view counts under its dominant emotion, its time under each."""
    rows = []
    for (device_id, day), group in sorted(_device_days(sessions).items()):
        views = [session for session in group if session["viewed"]]
        for code, name in EMOTIONS.items():
            rows.append(
                {
                    "device_id": device_id,
                    "date": day,
                    "period_start": iso(dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)),
                    "emotion": name,
                    "views": sum(session["dominant_emotion"] == code for session in views),
                    "views_duration_ms": sum(session["emotion_ms"].get(code, 0) for session in views),
                    "ots": len(group),
                    "ots_duration_ms": sum(session["duration_ms"] for session in group),
                }
            )
    return rows


def device_records(app: SeemetrixEmulator, *, include_keys: bool = False) -> list[dict[str, t.Any]]:
    """The devices, online first, then offline, then frozen, as the tap lists them."""
    order = {"online": 0, "offline": 1, "frozen": 2}
    rows = []
    for device in sorted(app.devices.values(), key=lambda device: (order[device.status], device.device_id)):
        row = {
            "device_id": device.device_id,
            "name": device.name,
            "status": device.status,
            "ip": None if device.ip == "-" else device.ip,
            "acl": device.acl,
            "created_at": iso(device.created),  # whole seconds, as RFC 1123 carries them
            "modified_at": iso(device.modified),
            "is_online": device.status == "online",
            "is_frozen": device.status == "frozen",
            "or_flag": 0,
            "sid": device.sid,
        }
        if include_keys:
            row["device_key"] = device.key
            row["device_secret"] = device.secret
        rows.append(row)
    return rows


def counters_values(app: SeemetrixEmulator) -> dict[str, t.Any]:
    """The counters at the emulator's `now()`: views (sessions that looked) of all time and of now's periods."""
    now = app.now()
    views = [session for session in app.truth_sessions() if session["viewed"]]
    since = {
        "views_current_hour": hour_of(now),
        "views_current_day": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "views_current_month": now.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
    }
    values: dict[str, t.Any] = {
        name: sum(start <= session["start"] <= now for session in views) for name, start in since.items()
    }
    values["views_total"] = len(views)
    values["devices"] = len(app.devices)
    values["movies"] = app.movies
    values["online_devices"] = sum(device.status == "online" for device in app.devices.values())
    duration = sum(session["duration_ms"] for session in views)
    values["average_view_duration_seconds"] = round(duration / len(views) / 1000, 2) if views else 0.0
    return values
