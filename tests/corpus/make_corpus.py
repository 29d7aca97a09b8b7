#!/usr/bin/env python3
"""Regenerates dwell's bad-input corpus: tests/corpus/{ingest,settings}/ and cases.toml.

Every file is built from fixed values (no clock, no randomness), so running this twice gives
the same bytes (Parquet files embed the writing pyarrow's version in their footer, so another
pyarrow version gives slightly different Parquet bytes but the same cases).

Needs pyarrow: run it with dwell's venv, e.g.
    ~/.cache/dwell/venv/bin/python tests/corpus/make_corpus.py

The manifest (cases.toml) is written from the case list below, so files and manifest never
drift apart. `expect` lists substrings that must all appear in dwell's error text.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import struct
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
INGEST = HERE / "ingest"
SETTINGS = HERE / "settings"
MAX_BYTES = 20 * 1024

# ---------------------------------------------------------------------------------------------
# Valid base events (SESSIONS.md §1): four rows, one day, two users.

UTC = dt.timezone.utc
TIMES = [
    dt.datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC),
    dt.datetime(2024, 3, 1, 10, 5, 0, tzinfo=UTC),
    dt.datetime(2024, 3, 1, 10, 40, 0, tzinfo=UTC),
    dt.datetime(2024, 3, 1, 11, 0, 0, tzinfo=UTC),
]
TIME_TEXT = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in TIMES]
USERS = ["u1", "u1", "u2", "u2"]
APPS = ["crm", "crm", "crm", "wiki"]
TABS = ["t1", "t1", "t2", None]
TYPES = ["page_view", "user_action", "page_view", "tab_close"]
EVENT_IDS = ["e1", "e2", "e3", "e4"]
HEADER = ["event_time", "user_id", "app_id", "tab_id", "event_type", "event_id"]


def base_columns() -> dict[str, pa.Array]:
    """The base events as Arrow columns, in HEADER order."""
    return {
        "event_time": pa.array(TIMES, pa.timestamp("ms", tz="UTC")),
        "user_id": pa.array(USERS, pa.string()),
        "app_id": pa.array(APPS, pa.string()),
        "tab_id": pa.array(TABS, pa.string()),
        "event_type": pa.array(TYPES, pa.string()),
        "event_id": pa.array(EVENT_IDS, pa.string()),
    }


def parquet(columns: dict[str, pa.Array]) -> bytes:
    """A Parquet file of the columns: uncompressed, one row group, no page index."""
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="none",
        write_page_index=False,
        use_dictionary=False,
        row_group_size=1024,
    )
    return sink.getvalue().to_pybytes()


def with_column(name: str, array: pa.Array | None) -> dict[str, pa.Array]:
    """The base columns with `name` replaced by `array` (dropped when None), order kept."""
    columns = base_columns()
    if array is None:
        del columns[name]
    else:
        columns[name] = array
    return columns


def csv_text(header: list[str], rows: list[list[str]], sep: str = ",") -> bytes:
    lines = [sep.join(header)] + [sep.join(row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def base_csv_rows() -> list[list[str]]:
    return [
        [TIME_TEXT[i], USERS[i], APPS[i], TABS[i] or "", TYPES[i], EVENT_IDS[i]]
        for i in range(len(TIMES))
    ]


def base_json_rows() -> list[dict]:
    return [
        {
            "event_time": TIME_TEXT[i],
            "user_id": USERS[i],
            "app_id": APPS[i],
            "tab_id": TABS[i],
            "event_type": TYPES[i],
            "event_id": EVENT_IDS[i],
        }
        for i in range(len(TIMES))
    ]


def jsonl(rows: list) -> bytes:
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()


def fixed_garbage(n: int, seed: int) -> bytes:
    """Random-looking but fixed bytes (a 32-bit LCG), starting with bytes that are not UTF-8."""
    out = bytearray(b"\xff\xfe\x00\xc3\x28")  # BOM-less junk, then an invalid 2-byte sequence
    state = seed
    while len(out) < n:
        state = (1103515245 * state + 12345) & 0xFFFFFFFF
        out.append((state >> 16) & 0xFF)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Broken Parquet files, made from a valid one.

def valid_parquet() -> bytes:
    return parquet(base_columns())


def footer_start(data: bytes) -> int:
    (metadata_len,) = struct.unpack("<I", data[-8:-4])
    return len(data) - 8 - metadata_len


def truncated(data: bytes) -> bytes:
    cut = len(data) // 2
    while data[:cut].endswith(b"PAR1"):  # never by chance a plausible footer
        cut -= 1
    return data[:cut]


def bad_magic(data: bytes) -> bytes:
    return data[:-4] + b"RAP1"


def absurd_footer(data: bytes) -> bytes:
    return data[:-8] + struct.pack("<I", 2**31) + b"PAR1"


def zeroed_pages(data: bytes) -> bytes:
    start = footer_start(data)
    assert 4 < start < len(data) - 8, "footer in an unexpected place"
    return data[:4] + bytes(start - 4) + data[start:]


# ---------------------------------------------------------------------------------------------
# The cases. Each: (file, bytes or None for a "lands nothing" case, expect, what, note).
# `note` is written as a comment above the entry (e.g. the parquet crate's likely text).

PARQUET_NOTE = "the reason after 'not a readable Parquet file:' comes from the parquet crate"


def ingest_cases() -> list[dict]:
    good = valid_parquet()
    cases = []

    def case(file, data, expect=None, what="", note=None, outcome=None):
        cases.append(
            dict(file=file, data=data, expect=expect, what=what, note=note, outcome=outcome)
        )

    # --- Parquet: broken bytes -----------------------------------------------------------
    case("truncated.parquet", truncated(good),
         ["truncated.parquet", "not a readable Parquet file"],
         "a valid Parquet file cut in half (the tail is page or metadata bytes, not PAR1)",
         PARQUET_NOTE + "; likely 'Invalid Parquet file. Corrupt footer'")
    case("bad_magic.parquet", bad_magic(good),
         ["bad_magic.parquet", "not a readable Parquet file"],
         "a valid Parquet file whose last 4 bytes are RAP1 instead of PAR1",
         PARQUET_NOTE + "; likely 'Invalid Parquet file. Corrupt footer'")
    case("absurd_footer.parquet", absurd_footer(good),
         ["absurd_footer.parquet", "not a readable Parquet file"],
         "a valid Parquet file whose footer length field says 2^31 bytes",
         PARQUET_NOTE + "; likely 'Parquet file too small. Size is N but need 2147483656'")
    case("zeroed_pages.parquet", zeroed_pages(good),
         ["zeroed_pages.parquet", "not a readable Parquet file"],
         "a Parquet file with an intact footer but every byte between the leading PAR1 and "
         "the footer zeroed: the metadata is readable, the pages are not",
         PARQUET_NOTE + "; fails while reading batches (page header with no fields), "
         "not while opening; likely 'Required field ... is missing'")
    case("empty.parquet", b"",
         ["empty.parquet", "not a readable Parquet file"],
         "a 0-byte .parquet file",
         PARQUET_NOTE + "; likely 'Parquet file too small. Size is 0 but need 8'")
    case("only_magic.parquet", b"PAR1PAR1",
         ["only_magic.parquet", "not a readable Parquet file"],
         "just 'PAR1PAR1': the footer length reads as the bytes 'PAR1' (827474256)",
         PARQUET_NOTE + "; likely 'Parquet file too small. Size is 8 but need 827474264'")
    case("zero_rows.parquet",
         parquet({k: v.slice(0, 0) for k, v in base_columns().items()}),
         outcome="lands nothing",
         what="a valid Parquet file with the full schema and no rows: not an error; "
              "nothing is written, not even a commit marker",
         note="not an error: nothing is written")

    # --- Parquet: schema and values ------------------------------------------------------
    case("wrong_type_user.parquet",
         parquet(with_column("user_id", pa.array([1, 1, 2, 2], pa.int64()))),
         ["wrong_type_user.parquet", "column user_id", "Int64", "expected a string"],
         "user_id stored as int64")
    case("wrong_type_time.parquet",
         parquet(with_column("event_time", pa.array(
             [int(t.timestamp() * 1000) for t in TIMES], pa.int64()))),
         ["wrong_type_time.parquet", "column event_time", "Int64",
          "expected a timestamp or ISO 8601 text"],
         "event_time stored as int64 epoch milliseconds")
    case("wrong_type_time_float.parquet",
         parquet(with_column("event_time", pa.array(
             [t.timestamp() for t in TIMES], pa.float64()))),
         ["wrong_type_time_float.parquet", "column event_time", "Float64",
          "expected a timestamp or ISO 8601 text"],
         "event_time stored as float64 epoch seconds")
    case("date32_time.parquet",
         parquet(with_column("event_time", pa.array([t.date() for t in TIMES], pa.date32()))),
         ["date32_time.parquet", "column event_time", "Date32",
          "expected a timestamp or ISO 8601 text"],
         "event_time stored as a date (no time of day)")
    case("missing_user.parquet", parquet(with_column("user_id", None)),
         ["missing_user.parquet", "column user_id", "is missing"],
         "no user_id column")
    case("null_user.parquet",
         parquet(with_column("user_id", pa.array(["u1", None, "u2", "u2"], pa.string()))),
         ["null_user.parquet", "column user_id", "row 2 is NULL"],
         "user_id is NULL in row 2")
    case("null_time.parquet",
         parquet(with_column("event_time", pa.array(
             [TIMES[0], TIMES[1], None, TIMES[3]], pa.timestamp("ms", tz="UTC")))),
         ["null_time.parquet", "column event_time", "row 3 is NULL"],
         "event_time is NULL in row 3")
    columns = base_columns()
    columns["date"] = pa.array([t.date() for t in TIMES], pa.date32())
    case("date_column.parquet", parquet(columns),
         ["date_column.parquet", "column date", "is reserved"],
         "an extra column named `date`, which is the hive partition column of events/")
    case("nested_struct.parquet",
         parquet(with_column("user_id", pa.array(
             [{"id": u, "domain": "example.com"} for u in USERS],
             pa.struct([("id", pa.string()), ("domain", pa.string())])))),
         ["nested_struct.parquet", "column user_id", "expected a string"],
         "user_id is a struct {id, domain} instead of a string",
         "the type is shown as Struct(...) in arrow's Display form; not asserted")
    case("bad_time_text.parquet",
         parquet(with_column("event_time", pa.array(
             [TIME_TEXT[0], "2024-13-45 25:61:00", TIME_TEXT[2], TIME_TEXT[3]], pa.string()))),
         ["bad_time_text.parquet", "column event_time", "cannot be read as",
          "2024-13-45 25:61:00"],
         "event_time stored as text, row 2 is not a real time",
         "the bad value is quoted by arrow-cast ('Error parsing timestamp from ...')")
    case("time_out_of_range.parquet",
         parquet(with_column("event_time", pa.array(
             [TIMES[0], dt.datetime(2300, 1, 1, tzinfo=UTC), TIMES[2], TIMES[3]],
             pa.timestamp("us", tz="UTC")))),
         ["time_out_of_range.parquet", "column event_time", "cannot be read as"],
         "an event_time in the year 2300 (microseconds): beyond nanosecond range, "
         "so the cast to the landed type overflows",
         "arrow-cast's strict cast reports an arithmetic overflow")

    # --- CSV -----------------------------------------------------------------------------
    rows = base_csv_rows()
    no_tab = [h for h in HEADER if h != "tab_id"]
    case("missing_column.csv",
         csv_text(no_tab, [[r[i] for i, h in enumerate(HEADER) if h != "tab_id"] for r in rows]),
         ["missing_column.csv", "column tab_id", "is missing"],
         "no tab_id column")
    broken = [list(r) for r in rows]
    broken[1] = broken[1] + ["extra", "fields"]
    case("broken_row.csv", csv_text(HEADER, broken),
         ["broken_row.csv", "not a readable CSV file", "unequal lengths"],
         "data row 2 (line 3) has two fields more than the header",
         "raised by schema inference (csv crate, not flexible); arrow-csv says "
         "'Encountered unequal lengths between records on CSV file ... at line 3'")
    bad = [list(r) for r in rows]
    bad[2][0] = "yesterday at noon"
    case("bad_time.csv", csv_text(HEADER, bad),
         ["bad_time.csv", "column event_time", "cannot be read as", "yesterday at noon"],
         "event_time in data row 3 is unparseable text")
    epoch = [list(r) for r in rows]
    for i, r in enumerate(epoch):
        r[0] = str(int(TIMES[i].timestamp()))
    case("epoch_time.csv", csv_text(HEADER, epoch),
         ["epoch_time.csv", "column event_time", "cannot be read as"],
         "event_time as epoch seconds (1709287200): CSV times must be ISO 8601 text")
    case("empty.csv", b"",
         ["empty.csv", "column event_time", "is missing"],
         "a 0-byte .csv file: inference finds no header, so no columns at all",
         "the first required column checked is event_time")
    case("header_only.csv", csv_text(HEADER, []),
         outcome="lands nothing",
         what="the header line and no rows: not an error; nothing is written",
         note="not an error: nothing is written")
    case("binary_garbage.csv", fixed_garbage(600, seed=20240301),
         ["binary_garbage.csv", "not a readable CSV file", "UTF-8"],
         "600 fixed pseudo-random bytes, not UTF-8 from the first byte",
         "arrow-csv: 'Encountered UTF-8 error while reading CSV file: ...'")
    nulls = [list(r) for r in rows]
    nulls[1][1] = ""
    case("null_user.csv", csv_text(HEADER, nulls),
         ["null_user.csv", "column user_id", "row 2 is NULL"],
         "user_id empty (read as NULL) in data row 2")
    case("tab_separated.csv", csv_text(HEADER, rows, sep="\t"),
         ["tab_separated.csv", "not a readable CSV file", "column 0 at line 1"],
         "tab-separated values named .csv: read as one column named "
         "'event_time<TAB>user_id<TAB>...', whose values are not times")
    dup_header = HEADER + ["user_id"]
    dup_rows = [r + [r[1] + "-dup"] for r in rows]
    case("duplicate_column.csv", csv_text(dup_header, dup_rows),
         ["duplicate_column.csv", "user_id"],
         "two columns named user_id. Nothing in read_source/normalize rejects duplicate "
         "names, so this may land and break the events table; dwell should reject it "
         "before writing",
         "UNSURE: expected to FAIL today (landing succeeds, or refresh fails after writing)")

    # --- JSON lines ----------------------------------------------------------------------
    jrows = base_json_rows()
    lines = jsonl(jrows).decode().splitlines()
    lines[2] = '{"event_time":"2024-03-01T10:40:00Z","user_id":"u2","app_id":'
    case("broken_row.jsonl", ("\n".join(lines) + "\n").encode(),
         ["broken_row.jsonl", "not a readable JSON lines file", "Not valid JSON"],
         "row 3 is cut off mid-object",
         "arrow-json parses line by line, so serde's position says 'line 1', "
         "not line 3: the row is not identified")
    wrong = [dict(r, user_id={"id": r["user_id"]}) for r in jrows]
    case("wrong_type.jsonl", jsonl(wrong),
         ["wrong_type.jsonl", "not a readable JSON lines file", "user_id"],
         "user_id is an object in every row",
         "inferred Struct, forced to Utf8 by strings_for_engine_columns, then the decoder "
         "fails: 'whilst decoding field 'user_id': expected string got {...}'")
    wrong = [dict(r) for r in jrows]
    wrong[1]["user_id"] = ["u1", "u9"]
    case("wrong_type_array.jsonl", jsonl(wrong),
         ["wrong_type_array.jsonl", "not a readable JSON lines file", "user_id"],
         "user_id is an array in row 2 (a string elsewhere)",
         "inference merges string+array into List(Utf8), strings_for_engine_columns forces "
         "Utf8, and the decoder rejects row 2: 'expected string got [\"u1\",\"u9\"]'")
    numeric = [dict(r, event_time=int(TIMES[i].timestamp() * 1000)) for i, r in enumerate(jrows)]
    case("numeric_time.jsonl", jsonl(numeric),
         ["numeric_time.jsonl", "not a readable JSON lines file", "event_time"],
         "event_time as epoch milliseconds (JSON numbers)",
         "forced to Utf8 and decoded without coerce_primitive: "
         "'whilst decoding field 'event_time': expected string got 1709287200000'")
    bad = [dict(r) for r in jrows]
    bad[1]["event_time"] = "31/02/2024 10:00"
    case("bad_time.jsonl", jsonl(bad),
         ["bad_time.jsonl", "column event_time", "cannot be read as", "31/02/2024 10:00"],
         "event_time in row 2 is text that is not a time")
    missing = [dict(r) for r in jrows]
    del missing[1]["user_id"]
    case("null_user.jsonl", jsonl(missing),
         ["null_user.jsonl", "column user_id", "row 2 is NULL"],
         "row 2 has no user_id key (reads as NULL)")
    case("empty.jsonl", b"",
         ["empty.jsonl", "column event_time", "is missing"],
         "a 0-byte .jsonl file: no rows, so no columns")
    case("array_document.json",
         json.dumps(jrows[:2], separators=(",", ":")).encode() + b"\n",
         ["array_document.json", "not a readable JSON lines file",
          "Expected JSON record to be an object"],
         "a .json file holding one JSON array of events (not JSON lines)")
    case("binary_garbage.jsonl", fixed_garbage(600, seed=17),
         ["binary_garbage.jsonl", "not a readable JSON lines file"],
         "600 fixed pseudo-random bytes, not UTF-8",
         "read_line fails: 'Failed to read JSON record: stream did not contain valid UTF-8'")

    # --- Odd but legal file names: the error must name the file as given ------------------
    spaced = [list(r) for r in rows]
    spaced[0][0] = "not a time"
    case("name with spaces.csv", csv_text(HEADER, spaced),
         ["name with spaces.csv", "column event_time", "cannot be read as"],
         "spaces in the name; event_time of row 1 unparseable")
    no_app = [h for h in HEADER if h != "app_id"]
    case("UPPER CASE.CSV",
         csv_text(no_app, [[r[i] for i, h in enumerate(HEADER) if h != "app_id"] for r in rows]),
         ["UPPER CASE.CSV", "column app_id", "is missing"],
         "upper-case extension (matched case-insensitively, so read as CSV); no app_id")
    case("many.dots.in.the.name.jsonl", b'{"event_time": "2024-03-01T10:00:00Z",\n',
         ["many.dots.in.the.name.jsonl", "not a readable JSON lines file"],
         "several dots in the name (the last one decides the format); broken JSON")
    case("percent%20and#hash.parquet", bad_magic(good),
         ["percent%20and#hash.parquet", "not a readable Parquet file"],
         "'%20' and '#' in the name must not be decoded or cut; bad Parquet magic")
    nulls_copy = [list(r) for r in rows]
    nulls_copy[3][1] = ""
    case("events (copy) [1].csv", csv_text(HEADER, nulls_copy),
         ["events (copy) [1].csv", "column user_id", "row 4 is NULL"],
         "parentheses and brackets in the name; user_id empty in data row 4")
    case("-leading-dash.csv", csv_text(no_tab, [[r[i] for i, h in enumerate(HEADER)
                                                   if h != "tab_id"] for r in rows]),
         ["-leading-dash.csv", "column tab_id", "is missing"],
         "a name that starts with '-' (pass it as a path, not a bare argument); no tab_id")

    # --- Found by fuzzing (fuzz/, cargo fuzz): kept as found, under found/ ----------------
    case("fuzz_arrow_schema_panic.parquet",
         (HERE / "found" / "arrow_schema_panic.parquet").read_bytes(),
         ["fuzz_arrow_schema_panic.parquet", "not a readable Parquet file",
          "the reader failed on it"],
         "found by `cargo fuzz run ingest_parquet`: an embedded Arrow schema that makes "
         "arrow-ipc panic (convert.rs:390) inside the Parquet reader; the panic is contained "
         "and becomes this file's error",
         "the panic message comes from arrow-ipc")

    # --- Unknown formats: rejected by name before the bytes are read ---------------------
    case("data.txt", csv_text(HEADER, rows),
         ["data.txt", "unknown format"],
         "valid CSV content under a .txt name")
    case("events.csv.gz", gzip.compress(csv_text(HEADER, rows), mtime=0),
         ["events.csv.gz", "unknown format"],
         "gzip-compressed CSV: the extension is .gz, which dwell does not read")
    case("no_extension", csv_text(HEADER, rows),
         ["no_extension", "unknown format"],
         "no extension at all")
    return cases


def settings_cases() -> list[dict]:
    cases = []

    def case(file, text, expect, what, note=None):
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        cases.append(dict(file=file, data=data, expect=expect, what=what, note=note,
                          outcome=None))

    case("not_toml.toml", 'default_timeout = "30m"\nthis is not toml\n',
         ["dwell.toml", "line 2"],
         "a TOML syntax error on line 2 (a bare sentence)",
         "toml's message follows 'line 2: '; its wording is not asserted")
    case("unknown_key.toml", 'default_timeout = "30m"\nsession_timeout = "45m"\n',
         ["dwell.toml", "line 2", "unknown field", "session_timeout"],
         "a key dwell does not have (session_timeout)")
    case("unknown_segment_key.toml", '[segments]\nstruggling_min_app = 3\n',
         ["dwell.toml", "line 2", "unknown field", "struggling_min_app"],
         "a misspelt key inside [segments] (struggling_min_apps)")
    case("wrong_section.toml", '[app_timeout]\ncrm = "5m"\n',
         ["dwell.toml", "unknown field", "app_timeout"],
         "a misspelt table name ([app_timeout] for [app_timeouts])")
    case("negative_timeout.toml", 'default_timeout = "-5m"\n',
         ["dwell.toml", "default_timeout", "'-5m' is not a duration"],
         "a negative timeout")
    case("zero_timeout.toml", 'default_timeout = "0s"\n',
         ["dwell.toml", "default_timeout", "must be longer than zero"],
         "a zero timeout")
    case("empty_timeout.toml", 'default_timeout = ""\n',
         ["dwell.toml", "default_timeout", "is not a duration"],
         "an empty timeout string")
    case("timeout_not_duration.toml", 'default_timeout = "half an hour"\n',
         ["dwell.toml", "default_timeout", "'half an hour' is not a duration"],
         "a timeout in words")
    case("sub_millisecond.toml", 'default_timeout = "1500us"\n',
         ["dwell.toml", "default_timeout", "finer than a millisecond"],
         "a timeout of 1.5 ms (finer than dwell keeps)")
    case("wrong_type.toml", 'default_timeout = 30\n',
         ["dwell.toml", "line 1", "invalid type"],
         "a number where a duration string is expected",
         "GAP: toml's message() names the line, not the key default_timeout "
         "(SESSIONS.md §5 says the error names the key)")
    case("bad_day_boundary.toml", 'day_boundary = "midnight"\n',
         ["dwell.toml", "line 1", "invalid type"],
         "day_boundary is a boolean; a string is given",
         "same gap as wrong_type.toml: the line is named, not the key")
    case("bad_time_zone.toml", 'day_boundary = true\ntime_zone = "Mars/Olympus_Mons"\n',
         ["dwell.toml", "time_zone", "'Mars/Olympus_Mons' is not an IANA time zone"],
         "a time zone that does not exist")
    case("huge_value.toml", 'default_timeout = "1000years"\n',
         ["dwell.toml", "default_timeout", "'1000years' is too long"],
         "a timeout longer than i64 nanoseconds (about 292 years)")
    case("overflow_value.toml", 'max_session_duration = "99999999999999999999h"\n',
         ["dwell.toml", "max_session_duration", "is not a duration"],
         "a number that overflows u64 while the duration is parsed",
         "humantime: 'number is too large or cannot be represented ...'")
    case("max_duration_off.toml", 'max_session_duration = "off"\n',
         ["dwell.toml", "max_session_duration", "'off' is not a duration"],
         "'off' for the maximum duration (it is off by leaving the key out)")
    case("bad_app_timeout.toml", '[app_timeouts]\ncrm = "5m"\nwiki = "0m"\n',
         ["dwell.toml", "app_timeouts.wiki", "must be longer than zero"],
         "one application's timeout is zero")
    case("app_timeout_number.toml", '[app_timeouts]\ncrm = 5\n',
         ["dwell.toml", "line 2", "invalid type"],
         "an application timeout as a number",
         "toml names the line of the value, not the key app_timeouts.crm")
    case("app_timeouts_not_table.toml", 'app_timeouts = "5m"\n',
         ["dwell.toml", "line 1", "invalid type"],
         "app_timeouts given as a string instead of a table")
    case("negative_sessions_per_day.toml",
         '[segments]\nstruggling_min_sessions_per_day = -1.0\n',
         ["dwell.toml", "segments.struggling_min_sessions_per_day", "must be a positive number"],
         "a negative threshold")
    case("nan_sessions_per_day.toml", '[segments]\nstruggling_min_sessions_per_day = nan\n',
         ["dwell.toml", "segments.struggling_min_sessions_per_day", "must be a positive number"],
         "NaN as a threshold (valid TOML float)")
    case("negative_count.toml", '[segments]\ndisengaged_max_sessions = -1\n',
         ["dwell.toml", "line 2", "-1"],
         "a negative count where an unsigned integer is expected",
         "serde: 'invalid value: integer `-1`, expected u64'; key not named")
    case("huge_integer.toml", '[segments]\ndisengaged_max_sessions = 99999999999999999999\n',
         ["dwell.toml", "line 2"],
         "an integer beyond i64 (TOML's integer range)",
         "UNSURE of toml's wording (parse error or serde's u64 range error); both point at line 2")
    case("bad_segment_duration.toml",
         '[segments]\nstruggling_max_median_session = "2 minutes please"\n',
         ["dwell.toml", "segments.struggling_max_median_session", "is not a duration"],
         "trailing words after a duration")
    case("duplicate_key.toml", 'default_timeout = "30m"\ndefault_timeout = "45m"\n',
         ["dwell.toml", "line 2", "duplicate key"],
         "the same key twice")
    case("not_utf8.toml", b'default_timeout = "30m"\n# caf\xe9 in Latin-1\n',
         ["dwell.toml", "(file)", "not UTF-8 text"],
         "Latin-1 text (byte 0xE9): only reachable through the engine, which reads bytes",
         "read_settings checks UTF-8 before Settings::parse; key is '(file)'")
    return cases


# ---------------------------------------------------------------------------------------------

def toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def manifest(ingest: list[dict], settings: list[dict]) -> str:
    out = [
        "# dwell's bad-input corpus. GENERATED by make_corpus.py: edit that, then rerun it.",
        "#",
        "# [[ingest]]: ingest `file` (relative to this folder) into an empty data location.",
        "#   expect  = substrings that must ALL appear in the error text; nothing may be written.",
        "#   outcome = \"lands nothing\" instead of expect: not an error, and nothing is written.",
        "# [[settings]]: copy `file` to <location>/dwell.toml and open the location; expect as",
        "#   above (errors name '<location>/dwell.toml', not the corpus file name).",
        "",
    ]
    for table, cases in (("ingest", ingest), ("settings", settings)):
        folder = "ingest" if table == "ingest" else "settings"
        for c in cases:
            if c.get("note"):
                out.append(f"# {c['note']}")
            out.append(f"[[{table}]]")
            out.append(f"file = {toml_str(folder + '/' + c['file'])}")
            if c.get("outcome"):
                out.append(f"outcome = {toml_str(c['outcome'])}")
            else:
                out.append("expect = [" + ", ".join(toml_str(e) for e in c["expect"]) + "]")
            out.append(f"what = {toml_str(c['what'])}")
            out.append("")
    return "\n".join(out)


def write_folder(folder: Path, cases: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = {c["file"] for c in cases}
    assert len(names) == len(cases), "duplicate file names"
    for old in folder.iterdir():  # the folder is this script's: drop stale cases
        if old.is_file() and old.name not in names:
            old.unlink()
    for c in cases:
        assert "/" not in c["file"] and ".." not in c["file"], c["file"]
        assert len(c["data"]) < MAX_BYTES, f"{c['file']} is {len(c['data'])} bytes"
        (folder / c["file"]).write_bytes(c["data"])


def check(ingest: list[dict]) -> None:
    by_name = {c["file"]: c["data"] for c in ingest}
    assert not by_name["truncated.parquet"].endswith(b"PAR1")
    assert by_name["only_magic.parquet"] == b"PAR1PAR1"
    for c in ingest:
        if c.get("outcome"):
            assert c["expect"] is None
        else:
            assert c["expect"] and c["expect"][0] == c["file"], c["file"]
    # the valid files the broken ones came from, and the zero-row one, read back in pyarrow
    pq.read_table(pa.BufferReader(valid_parquet()))
    assert pq.read_table(pa.BufferReader(by_name["zero_rows.parquet"])).num_rows == 0


def main() -> int:
    ingest = ingest_cases()
    settings = settings_cases()
    check(ingest)
    write_folder(INGEST, ingest)
    write_folder(SETTINGS, settings)
    text = manifest(ingest, settings)
    (HERE / "cases.toml").write_text(text, encoding="utf-8")
    try:  # the manifest must parse and list every file
        import tomllib

        parsed = tomllib.loads(text)
        listed = {e["file"] for e in parsed["ingest"] + parsed["settings"]}
        on_disk = {f"{p.parent.name}/{p.name}" for d in (INGEST, SETTINGS) for p in d.iterdir()}
        assert listed == on_disk, listed ^ on_disk
    except ImportError:  # Python < 3.11
        pass
    print(f"{len(ingest)} ingest cases, {len(settings)} settings cases in {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
