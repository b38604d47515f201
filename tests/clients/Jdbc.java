// pgjdbc (the driver DBeaver, Metabase and other JDBC tools ship) against a running Timberline.
// Usage: java -cp postgresql.jar Jdbc.java PORT. Data as in tests/it/clients.rs: 120 events from
// 2024-05-01T10:00:00Z, 30 s apart, levels ERROR/WARN/INFO, services api/db.
// Prints PASS|FAIL per check and "N failed"; exits 1 if any failed.

import java.sql.*;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.*;

public class Jdbc {
    static int failed = 0;

    interface Check { void run(Connection c) throws Exception; }

    static void check(String url, Properties props, String name, Check body) {
        try (Connection c = DriverManager.getConnection(url, props)) {
            body.run(c);
            System.out.println("PASS pgjdbc " + name);
        } catch (Throwable e) {
            failed++;
            System.out.println("FAIL pgjdbc " + name + ": " + e);
            e.printStackTrace(System.out);
        }
    }

    static void eq(Object got, Object want, String what) {
        if (!Objects.equals(got, want)) throw new AssertionError(what + ": got " + got + ", want " + want);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/timberline";
        Properties p = new Properties();
        p.setProperty("user", "timberline");
        p.setProperty("password", "timberline");
        OffsetDateTime t0 = OffsetDateTime.of(2024, 5, 1, 10, 0, 0, 0, ZoneOffset.UTC);

        check(url, p, "connect+server identity", c -> {
            DatabaseMetaData md = c.getMetaData();
            eq(md.getDatabaseProductName(), "PostgreSQL", "product");
            eq(md.getDatabaseMajorVersion(), 16, "major");
            eq(c.getTransactionIsolation(), Connection.TRANSACTION_READ_COMMITTED, "isolation");
            eq(c.getSchema(), "public", "schema");
        });

        check(url, p, "DatabaseMetaData getTables/getColumns/getSchemas/getTypeInfo/getPrimaryKeys", c -> {
            DatabaseMetaData md = c.getMetaData();
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            if (!tables.contains("logs")) throw new AssertionError("getTables: " + tables);
            List<String> matviews = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"MATERIALIZED VIEW"})) {
                while (rs.next()) matviews.add(rs.getString("TABLE_NAME"));
            }
            if (!matviews.contains("logs_per_minute")) throw new AssertionError("getTables MATERIALIZED VIEW: " + matviews);
            Map<String, Integer> cols = new LinkedHashMap<>();
            Map<String, String> typeNames = new LinkedHashMap<>();
            try (ResultSet rs = md.getColumns(null, "public", "logs", "%")) {
                while (rs.next()) {
                    cols.put(rs.getString("COLUMN_NAME"), rs.getInt("DATA_TYPE"));
                    typeNames.put(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"));
                }
            }
            eq(cols.get("ts"), Types.TIMESTAMP, "ts java type");
            eq(typeNames.get("ts"), "timestamptz", "ts type name");
            eq(cols.get("msg"), Types.VARCHAR, "msg java type");
            eq(typeNames.get("msg"), "text", "msg type name");
            eq(cols.get("parse_failed"), Types.BIT, "parse_failed java type");
            List<String> schemas = new ArrayList<>();
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
            }
            if (!schemas.contains("public")) throw new AssertionError("getSchemas: " + schemas);
            int types = 0;
            try (ResultSet rs = md.getTypeInfo()) {
                while (rs.next()) types++;
            }
            if (types < 10) throw new AssertionError("getTypeInfo: " + types + " types");
            try (ResultSet rs = md.getPrimaryKeys(null, "public", "logs")) {
                if (rs.next()) throw new AssertionError("logs has no primary key");
            }
        });

        check(url, p, "PreparedStatement x10 (named + binary after 5)", c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT ts, msg, level FROM logs WHERE service = ? AND ts >= ? ORDER BY ts LIMIT 1")) {
                for (int i = 0; i < 10; i++) {
                    ps.setString(1, i % 2 == 0 ? "api" : "db");
                    ps.setObject(2, t0.plusMinutes(i));
                    try (ResultSet rs = ps.executeQuery()) {
                        if (!rs.next()) throw new AssertionError("run " + i + ": no row");
                        OffsetDateTime ts = rs.getObject(1, OffsetDateTime.class);
                        // Events are 30 s apart; api has the even ones, db the odd ones.
                        int idx = (int) (java.time.Duration.between(t0, ts).getSeconds() / 30);
                        eq(idx % 2, i % 2, "run " + i + " service parity");
                        eq(rs.getString(2), "request " + idx + " done", "run " + i + " msg");
                        if (ts.isBefore(t0.plusMinutes(i))) throw new AssertionError("run " + i + ": " + ts);
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT count(*), 1.5::float8, true, 7::int4 FROM logs WHERE level = ?")) {
                for (int i = 0; i < 7; i++) {
                    ps.setString(1, "WARN");
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        eq(rs.getLong(1), 40L, "count run " + i);
                        eq(rs.getDouble(2), 1.5, "float8");
                        eq(rs.getBoolean(3), true, "bool");
                        eq(rs.getInt(4), 7, "int4");
                        eq(rs.getMetaData().getColumnType(1), Types.BIGINT, "count type");
                    }
                }
            }
        });

        check(url, p, "setFetchSize paging with autocommit off", c -> {
            c.setAutoCommit(false);
            try (Statement st = c.createStatement()) {
                st.setFetchSize(7);
                int rows = 0;
                OffsetDateTime last = null;
                try (ResultSet rs = st.executeQuery("SELECT ts FROM logs ORDER BY ts")) {
                    while (rs.next()) {
                        OffsetDateTime ts = rs.getObject(1, OffsetDateTime.class);
                        if (last != null && !ts.isAfter(last)) throw new AssertionError("order at " + rows);
                        last = ts;
                        rows++;
                    }
                }
                eq(rows, 120, "rows");
            }
            c.commit();
        });

        check(url, p, "errors carry SQLSTATE and the connection recovers", c -> {
            try (Statement st = c.createStatement()) {
                try {
                    st.executeQuery("SELECT * FROM no_such_table");
                    throw new AssertionError("no error");
                } catch (SQLException e) {
                    eq(e.getSQLState(), "42P01", "sqlstate");
                }
                try (ResultSet rs = st.executeQuery("SELECT 42")) {
                    rs.next();
                    eq(rs.getInt(1), 42, "after error");
                }
            }
        });

        System.out.println(failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
