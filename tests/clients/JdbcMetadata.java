// pgjdbc's DatabaseMetaData, as DBeaver and Metabase call it, against Timberline and a
// PostgreSQL 15 holding the same relations (tests/it/tools.rs loads both). Each call's answer,
// column labels and rows as text, must be PostgreSQL's, after naming each server's database and
// administrator alike. Usage:
//   java -cp postgresql.jar JdbcMetadata.java TL_PORT TL_DB TL_ADMIN PG_PORT PG_DB PG_ADMIN
// Both servers are logged into as `postgres`/`postgres`. Prints PASS|FAIL per call and
// "N failed"; exits 1 if any failed.
//
// The calls: Metabase's sync (getTables with its types, getSchemas, getColumns, getPrimaryKeys,
// getImportedKeys, getIndexInfo, getTablePrivileges) and DBeaver's connection and dialect set-up
// (getCatalogs, getTableTypes, getTypeInfo, getSQLKeywords, the function lists, the limits) and
// its generic table pages (keys, indexes, privileges, procedures, row identifiers).
//
// Where Timberline differs on purpose, the check says so:
//   logs.attrs is `text` holding JSON (PostgreSQL's table has `jsonb`): getColumns;
//   getSQLKeywords lists a newer PostgreSQL's keywords (Timberline reports 16), 15's among them;
//   getTypeInfo: PostgreSQL also lists information_schema's domains and the row types of
//   relations, which Timberline's catalog does not make; every type both list is identical.

import java.sql.*;
import java.util.*;

public class JdbcMetadata {
    interface Call { Object run(DatabaseMetaData md) throws Exception; }
    static LinkedHashMap<String, Call> calls() {
        LinkedHashMap<String, Call> m = new LinkedHashMap<>();
        m.put("getCatalogs()", md -> md.getCatalogs());
        m.put("getSchemas()", md -> md.getSchemas());
        m.put("getSchemas(null,pub%)", md -> md.getSchemas(null, "pub%"));
        m.put("getTableTypes()", md -> md.getTableTypes());
        m.put("getTables(public,%,null)", md -> md.getTables(null, "public", "%", null));
        m.put("getTables(null,%,metabase types)", md -> md.getTables(null, null, "%", new String[]{"TABLE","PARTITIONED TABLE","VIEW","FOREIGN TABLE","MATERIALIZED VIEW"}));
        m.put("getTables(pg_catalog,pg_class)", md -> md.getTables(null, "pg_catalog", "pg_class", null));
        m.put("getColumns(public,%,%)", md -> md.getColumns(null, "public", "%", "%"));
        m.put("getColumns(null,logs,ts)", md -> md.getColumns(null, null, "logs", "ts"));
        m.put("getPrimaryKeys(public,logs)", md -> md.getPrimaryKeys(null, "public", "logs"));
        m.put("getImportedKeys(public,logs)", md -> md.getImportedKeys(null, "public", "logs"));
        m.put("getExportedKeys(public,logs)", md -> md.getExportedKeys(null, "public", "logs"));
        m.put("getCrossReference(logs,segments)", md -> md.getCrossReference(null, "public", "logs", null, "public", "segments"));
        m.put("getIndexInfo(logs,false,true)", md -> md.getIndexInfo(null, "public", "logs", false, true));
        m.put("getIndexInfo(logs,true,false)", md -> md.getIndexInfo(null, "public", "logs", true, false));
        m.put("getTablePrivileges(public,%)", md -> md.getTablePrivileges(null, "public", "%"));
        m.put("getColumnPrivileges(public,logs,%)", md -> md.getColumnPrivileges(null, "public", "logs", "%"));
        m.put("getBestRowIdentifier(logs)", md -> md.getBestRowIdentifier(null, "public", "logs", DatabaseMetaData.bestRowSession, true));
        m.put("getVersionColumns(logs)", md -> md.getVersionColumns(null, "public", "logs"));
        m.put("getTypeInfo()", md -> md.getTypeInfo());
        m.put("getProcedures(public,%)", md -> md.getProcedures(null, "public", "%"));
        m.put("getProcedureColumns(public,%,%)", md -> md.getProcedureColumns(null, "public", "%", "%"));
        m.put("getFunctions(public,%)", md -> md.getFunctions(null, "public", "%"));
        m.put("getFunctionColumns(public,%,%)", md -> md.getFunctionColumns(null, "public", "%", "%"));
        m.put("getFunctions(pg_catalog,now)", md -> md.getFunctions(null, "pg_catalog", "now"));
        m.put("getFunctions(null,nearest)", md -> md.getFunctions(null, null, "nearest"));
        m.put("getProcedures(null,log_context)", md -> md.getProcedures(null, null, "log_context"));
        m.put("getSuperTypes", md -> md.getSuperTypes(null, "public", "%"));
        m.put("getSuperTables", md -> md.getSuperTables(null, "public", "%"));
        m.put("getAttributes", md -> md.getAttributes(null, "public", "%", "%"));
        m.put("getClientInfoProperties()", md -> md.getClientInfoProperties());
        m.put("getPseudoColumns", md -> md.getPseudoColumns(null, "public", "logs", "%"));
        m.put("getUserName", md -> md.getUserName());
        m.put("getSQLKeywords", md -> md.getSQLKeywords());
        m.put("getNumericFunctions", md -> md.getNumericFunctions());
        m.put("getStringFunctions", md -> md.getStringFunctions());
        m.put("getSystemFunctions", md -> md.getSystemFunctions());
        m.put("getTimeDateFunctions", md -> md.getTimeDateFunctions());
        m.put("getIdentifierQuoteString", md -> md.getIdentifierQuoteString());
        m.put("getSearchStringEscape", md -> md.getSearchStringEscape());
        m.put("getMaxColumnNameLength", md -> md.getMaxColumnNameLength());
        m.put("getMaxTableNameLength", md -> md.getMaxTableNameLength());
        m.put("getMaxSchemaNameLength", md -> md.getMaxSchemaNameLength());
        m.put("getMaxUserNameLength", md -> md.getMaxUserNameLength());
        m.put("getMaxCatalogNameLength", md -> md.getMaxCatalogNameLength());
        m.put("getMaxProcedureNameLength", md -> md.getMaxProcedureNameLength());
        m.put("getMaxCursorNameLength", md -> md.getMaxCursorNameLength());
        m.put("getMaxIndexLength", md -> md.getMaxIndexLength());
        m.put("getMaxColumnsInIndex", md -> md.getMaxColumnsInIndex());
        m.put("getDefaultTransactionIsolation", md -> md.getDefaultTransactionIsolation());
        m.put("isReadOnly", md -> md.isReadOnly());
        m.put("getDatabaseProductName", md -> md.getDatabaseProductName());
        m.put("supportsTransactions", md -> md.supportsTransactions());
        m.put("getConnection().getCatalog", md -> md.getConnection().getCatalog());
        m.put("getConnection().getSchema", md -> md.getConnection().getSchema());
        m.put("getConnection().isValid", md -> md.getConnection().isValid(5));
        m.put("getConnection().getClientInfo", md -> md.getConnection().getClientInfo().toString());
        m.put("getConnection().getTransactionIsolation", md -> md.getConnection().getTransactionIsolation());
        return m;
    }
    /** A call's answer: one line of column labels, then one line per row. */
    static List<String> answer(Object o) throws Exception {
        List<String> lines = new ArrayList<>();
        if (!(o instanceof ResultSet)) {
            lines.add(String.valueOf(o));
            return lines;
        }
        try (ResultSet rs = (ResultSet) o) {
            ResultSetMetaData md = rs.getMetaData();
            StringBuilder sb = new StringBuilder();
            for (int i = 1; i <= md.getColumnCount(); i++) sb.append(i > 1 ? "|" : "").append(md.getColumnLabel(i));
            lines.add(sb.toString());
            while (rs.next()) {
                sb = new StringBuilder();
                for (int i = 1; i <= md.getColumnCount(); i++) sb.append(i > 1 ? "|" : "").append(rs.getString(i));
                lines.add(sb.toString());
            }
        }
        return lines;
    }

    static List<String> run(Connection c, Call call) {
        try {
            return answer(call.run(c.getMetaData()));
        } catch (SQLException e) {
            return List.of("ERROR " + e.getSQLState() + " " + e.getMessage().split("\n")[0]);
        } catch (Exception e) {
            return List.of("ERROR " + e);
        }
    }

    /** `line` with Timberline's database and administrator named as PostgreSQL's. */
    static String named(String line, String[] args) {
        return ("|" + line + "|")
                .replace("|" + args[1] + "|", "|" + args[4] + "|")
                .replace("|" + args[2] + "|", "|" + args[5] + "|")
                .replaceAll("^\\||\\|$", "")
                // pgjdbc's SPECIFIC_NAME is the name and the oid, which differs.
                .replaceAll("\\|(nearest|ts_distance|match|log_context)_\\d+$", "|$1_OID");
    }

    /** Why `tl` may differ from `pg` for `call`, or null when it may not. */
    static String differs(String call, List<String> tl, List<String> pg, Connection pgc) throws Exception {
        if (call.startsWith("getColumns(public")) {
            List<String> t = new ArrayList<>();
            for (String l : tl) t.add(l.replace("|logs|attrs|12|text|", "|logs|attrs|1111|jsonb|"));
            return t.equals(pg) ? "logs.attrs is text holding JSON" : null;
        }
        if (call.equals("getSQLKeywords")) {
            // RECHECK stopped being a keyword in PostgreSQL 16.
            Set<String> words = new HashSet<>(Arrays.asList((tl.get(0) + ",recheck").split(",")));
            return words.containsAll(Arrays.asList(pg.get(0).split(",")))
                    ? "the keywords of a newer PostgreSQL, 15's among them" : null;
        }
        if (call.equals("getTypeInfo()")) {
            if (!tl.get(0).equals(pg.get(0))) return null;
            Map<String, String> p = new HashMap<>();
            for (String l : pg.subList(1, pg.size())) p.put(l.split("\\|")[0], l);
            Set<String> extra = new HashSet<>();
            try (Statement st = pgc.createStatement();
                 ResultSet rs = st.executeQuery(
                     "SELECT '_' || relname FROM pg_class WHERE relnamespace IN "
                     + "('public'::regnamespace, 'information_schema'::regnamespace) "
                     + "UNION ALL SELECT typname FROM pg_type WHERE typtype = 'd' "
                     + "AND typnamespace = 'information_schema'::regnamespace "
                     + "UNION ALL SELECT '_' || typname FROM pg_type WHERE typtype = 'd' "
                     + "AND typnamespace = 'information_schema'::regnamespace")) {
                while (rs.next()) extra.add(rs.getString(1));
            }
            Set<String> seen = new HashSet<>();
            for (String l : tl.subList(1, tl.size())) {
                String name = l.split("\\|")[0];
                seen.add(name);
                // PostgreSQL 16's statistics views, in the catalog Timberline reports.
                if (!p.containsKey(name) && name.matches("_pg_(stat_checkpointer|stat_io|wait_events)")) continue;
                if (!l.equals(p.get(name))) return null;
            }
            for (String name : p.keySet()) {
                if (!seen.contains(name) && !extra.contains(name)) return null;
            }
            return "information_schema's domains and relations' row types are not in the catalog";
        }
        return null;
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.setProperty("user", "postgres");
        p.setProperty("password", "postgres");
        int failed = 0;
        try (Connection tl = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + args[0] + "/" + args[1], p);
             Connection pg = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + args[3] + "/" + args[4], p)) {
            for (Map.Entry<String, Call> e : calls().entrySet()) {
                List<String> t = new ArrayList<>();
                for (String l : run(tl, e.getValue())) t.add(named(l, args));
                List<String> want = new ArrayList<>();
                for (String l : run(pg, e.getValue())) want.add(named(l, args));
                if (t.equals(want)) {
                    System.out.println("PASS " + e.getKey() + (want.size() == 1 ? ": " + want.get(0)
                            : " (" + (want.size() - 1) + " rows)"));
                    continue;
                }
                String why = t.get(0).startsWith("ERROR") ? null : differs(e.getKey(), t, want, pg);
                if (why != null) {
                    System.out.println("PASS " + e.getKey() + " (differs: " + why + ")");
                    continue;
                }
                failed++;
                System.out.println("FAIL " + e.getKey());
                System.out.println("  timberline: " + String.join("\n              ", t.subList(0, Math.min(t.size(), 8))));
                System.out.println("  postgresql: " + String.join("\n              ", want.subList(0, Math.min(want.size(), 8))));
            }
        }
        System.out.println(failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
