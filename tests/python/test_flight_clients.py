"""dwell serve, through real Flight SQL clients: the ADBC driver and flightsql-dbapi.

Run by `tests/it/python.rs` (so by `cargo test`) against a `dwell serve` process it starts;
the environment names the server (DWELL_FLIGHT_HOST/PORT) and the credentials.
"""

import datetime
import os

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pytest
from adbc_driver_flightsql import DatabaseOptions
from adbc_driver_manager import AdbcStatusCode

HOST = os.environ["DWELL_FLIGHT_HOST"]
PORT = int(os.environ["DWELL_FLIGHT_PORT"])
URI = f"grpc://{HOST}:{PORT}"
USER = os.environ["DWELL_FLIGHT_USER"]
PASSWORD = os.environ["DWELL_FLIGHT_PASSWORD"]
TOKEN = os.environ["DWELL_FLIGHT_TOKEN"]


def connect_with_password():
    return flight_sql.connect(
        URI,
        db_kwargs={
            adbc_driver_manager.DatabaseOptions.USERNAME.value: USER,
            adbc_driver_manager.DatabaseOptions.PASSWORD.value: PASSWORD,
        },
    )


def connect_with_token():
    return flight_sql.connect(
        URI,
        db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {TOKEN}"},
    )


@pytest.fixture(scope="module")
def conn():
    with connect_with_password() as connection:
        yield connection


def scalar(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def assert_no_view_types(schema):
    for field in schema:
        assert not pa.types.is_string_view(field.type), field
        assert not pa.types.is_binary_view(field.type), field


def test_connect_with_password_and_with_token():
    for connect in (connect_with_password, connect_with_token):
        with connect() as c:
            assert scalar(c, "SELECT count(*) FROM sessions") > 0


def test_wrong_credentials_are_refused():
    with pytest.raises(adbc_driver_manager.Error) as failure:
        with flight_sql.connect(
            URI,
            db_kwargs={
                adbc_driver_manager.DatabaseOptions.USERNAME.value: USER,
                adbc_driver_manager.DatabaseOptions.PASSWORD.value: "wrong",
            },
        ) as c:
            scalar(c, "SELECT 1")
    assert failure.value.status_code == AdbcStatusCode.UNAUTHENTICATED
    with pytest.raises(adbc_driver_manager.Error) as failure:
        with flight_sql.connect(
            URI, db_kwargs={DatabaseOptions.AUTHORIZATION_HEADER.value: "Bearer forged"}
        ) as c:
            scalar(c, "SELECT 1")
    assert failure.value.status_code == AdbcStatusCode.UNAUTHENTICATED


def test_execute_and_fetch(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM sessions ORDER BY session_id LIMIT 25")
        table = cur.fetch_arrow_table()
    assert table.num_rows == 25
    assert_no_view_types(table.schema)
    assert "session_id" in table.column_names
    assert table.column("session_id").type == pa.string()


def test_parameters_in_where_and_in_the_select_list(conn):
    user = scalar(conn, "SELECT min(user_id) FROM sessions")
    expected = scalar(conn, f"SELECT count(*) FROM sessions WHERE user_id = '{user}'")
    assert expected > 0
    assert scalar(conn, "SELECT count(*) FROM sessions WHERE user_id = ?", (user,)) == expected
    with conn.cursor() as cur:
        cur.execute("SELECT ? AS greeting, ? + 1 AS answer", ("hello", 41))
        assert cur.fetchall() == [("hello", 42)]
    # The same prepared statement, run again with other values.
    with conn.cursor() as cur:
        for name in (user, "nobody"):
            cur.execute("SELECT count(*) FROM sessions WHERE user_id = ?", (name,))
            assert cur.fetchone()[0] == (expected if name == user else 0)


def test_execute_schema_is_the_result_schema(conn):
    sql = "SELECT session_id, user_id, start_time, duration_seconds FROM sessions LIMIT 5"
    with conn.cursor() as cur:
        schema = cur.adbc_execute_schema(sql)
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    assert schema == table.schema
    assert_no_view_types(schema)


def test_get_info(conn):
    # The driver answers get_info from the server's GetSqlInfo (name, versions) and its own.
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "dwell"
    assert info["vendor_version"] == os.environ["DWELL_VERSION"]
    assert info["vendor_arrow_version"].startswith("59")
    assert "Flight SQL" in info["driver_name"]


def objects(conn, **kwargs):
    return conn.adbc_get_objects(**kwargs).read_all().to_pylist()


def test_get_objects_at_every_depth(conn):
    catalogs = objects(conn, depth="catalogs")
    assert [c["catalog_name"] for c in catalogs] == ["datafusion"]
    assert all(c["catalog_db_schemas"] is None for c in catalogs)

    schemas = objects(conn, depth="db_schemas")
    names = sorted(s["db_schema_name"] for s in schemas[0]["catalog_db_schemas"])
    assert names == ["information_schema", "public"]
    assert all(s["db_schema_tables"] is None for s in schemas[0]["catalog_db_schemas"])

    filtered = objects(conn, depth="db_schemas", db_schema_filter="pub%")
    assert [s["db_schema_name"] for s in filtered[0]["catalog_db_schemas"]] == ["public"]

    tables = objects(conn, depth="tables", db_schema_filter="public")
    public = tables[0]["catalog_db_schemas"][0]["db_schema_tables"]
    kinds = {t["table_name"]: t["table_type"] for t in public}
    assert kinds["events"] == "TABLE"
    assert kinds["sessions"] == "VIEW"
    assert all(t["table_columns"] is None for t in public)

    views = objects(conn, depth="tables", table_types_filter=["VIEW"], db_schema_filter="public")
    view_names = {t["table_name"] for t in views[0]["catalog_db_schemas"][0]["db_schema_tables"]}
    assert "sessions" in view_names and "events" not in view_names

    columns = objects(
        conn, depth="columns", db_schema_filter="public", table_name_filter="sess%"
    )
    found = {
        t["table_name"]: [c["column_name"] for c in t["table_columns"]]
        for t in columns[0]["catalog_db_schemas"][0]["db_schema_tables"]
    }
    assert set(found) == {"sessions", "sessionized_events", "session_changes"}
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM sessions LIMIT 0")
        assert found["sessions"] == [d[0] for d in cur.description]

    only = objects(
        conn,
        depth="all",
        catalog_filter="datafusion",
        db_schema_filter="public",
        table_name_filter="sessions",
        column_name_filter="user%",
    )
    table = only[0]["catalog_db_schemas"][0]["db_schema_tables"]
    assert [t["table_name"] for t in table] == ["sessions"]
    assert [c["column_name"] for c in table[0]["table_columns"]] == ["user_id", "user_actions"]

    assert objects(conn, depth="all", catalog_filter="nope") == []


def test_get_table_schema_and_types(conn):
    schema = conn.adbc_get_table_schema("sessions")
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM sessions LIMIT 1")
        assert schema == cur.fetch_arrow_table().schema
    assert conn.adbc_get_table_schema("events", db_schema_filter="public").names[:3] == [
        "event_time",
        "account_id",
        "user_id",
    ]
    assert conn.adbc_get_table_types() == ["LOCAL TEMPORARY", "TABLE", "VIEW"]


def new_events(user, count):
    start = datetime.datetime(2026, 1, 5, 9, 0, tzinfo=datetime.timezone.utc)
    times, t = [], start
    for i in range(count):
        if i:
            t += datetime.timedelta(minutes=45 if i % 10 == 0 else 1)
        times.append(t)
    return pa.table(
        {
            "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "account_id": ["acme"] * count,
            "user_id": [user] * count,
            "app_id": ["crm"] * count,
            "tab_id": ["tab-1"] * count,
            "event_type": ["click"] * count,
            "event_id": [f"{user}-{i}" for i in range(count)],
        }
    )


def test_ingest_append_then_the_new_sessions_show(conn):
    user = "adbc-ingested-user"
    count_sql = "SELECT count(*) FROM sessions WHERE user_id = ?"
    assert scalar(conn, count_sql, (user,)) == 0
    with conn.cursor() as cur:
        landed = cur.adbc_ingest("events", new_events(user, 30), mode="append")
    assert landed == 30
    # 30 events with a 45-minute pause after every 10: three sessions.
    assert scalar(conn, count_sql, (user,)) == 3
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as failure:
            cur.adbc_ingest("events", new_events("x", 3), mode="replace")
        assert failure.value.status_code == AdbcStatusCode.UNAUTHORIZED
        with pytest.raises(adbc_driver_manager.Error) as failure:
            cur.adbc_ingest("events", new_events("x", 3).drop_columns(["user_id"]), mode="append")
        assert failure.value.status_code == AdbcStatusCode.INVALID_ARGUMENT
        assert "user_id" in str(failure.value)
    assert scalar(conn, count_sql, ("x",)) == 0


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE etc STORED AS CSV LOCATION '/etc/'",
        "DROP VIEW sessions",
        "INSERT INTO events SELECT * FROM events",
        "COPY (SELECT 1) TO '/tmp/dwell-adbc-copy.csv'",
        "SET datafusion.execution.batch_size = 1",
    ],
)
def test_anything_but_reading_is_refused(conn, sql):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as failure:
            cur.execute(sql)
            cur.fetchall()
    assert failure.value.status_code == AdbcStatusCode.UNAUTHORIZED, failure.value
    assert "read-only" in str(failure.value)
    assert scalar(conn, "SELECT count(*) FROM sessions") > 0


@pytest.mark.parametrize(
    "sql,code,words",
    [
        ("SELEC 1", AdbcStatusCode.INVALID_ARGUMENT, "SQL syntax error"),
        ("SELECT * FROM no_such_table", AdbcStatusCode.NOT_FOUND, "no_such_table"),
        ("SELECT nope FROM sessions", AdbcStatusCode.INVALID_ARGUMENT, "nope"),
    ],
)
def test_error_codes(conn, sql, code, words):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as failure:
            cur.execute(sql)
            cur.fetchall()
    assert failure.value.status_code == code, failure.value
    assert words in str(failure.value)


def test_flightsql_dbapi_with_password_and_token():
    from flightsql import FlightSQLClient, connect

    for client in (
        FlightSQLClient(host=HOST, port=PORT, user=USER, password=PASSWORD, insecure=True),
        FlightSQLClient(host=HOST, port=PORT, token=TOKEN, insecure=True),
    ):
        info = client.execute("SELECT count(*) AS n FROM sessions")
        table = client.do_get(info.endpoints[0].ticket).read_all()
        assert table.column("n")[0].as_py() > 0
        connection = connect(client)
        cursor = connection.cursor()
        user = cursor.execute("SELECT min(user_id) FROM sessions").fetchone()[0]
        n = cursor.execute("SELECT count(*) FROM sessions WHERE user_id = ?", [user]).fetchone()[0]
        assert n > 0
        assert "sessions" in connection.flightsql_get_table_names("public")
        # 3: FLIGHT_SQL_SERVER_READ_ONLY, 504: SQL_IDENTIFIER_QUOTE_CHAR.
        info = connection.flightsql_get_sql_info([0, 3, 504])
        assert info == {0: "dwell", 3: True, 504: '"'}
        columns = [c["name"] for c in connection.flightsql_get_columns("sessions", "public")]
        assert "session_id" in columns
        with pytest.raises(Exception) as failure:
            cursor.execute("DROP VIEW sessions")
        assert "read-only" in str(failure.value)
        connection.close()


def test_sqlalchemy_through_flightsql_dbapi():
    import sqlalchemy

    engine = sqlalchemy.create_engine(
        f"datafusion://{USER}:{PASSWORD}@{HOST}:{PORT}?insecure=true"
    )
    with engine.connect() as connection:
        count = connection.execute(sqlalchemy.text("SELECT count(*) FROM sessions")).scalar()
        assert count > 0
    inspector = sqlalchemy.inspect(engine)
    assert "sessions" in inspector.get_table_names(schema="public")
