// Replays Grafana's PostgreSQL-datasource traffic as its pgx driver sends it: the simple query
// protocol (PgConn.Exec), text results, several statements in one Exec, types by OID, and the
// health checks (`-- ping` of pgx v5, `;` of pgx v4). Connects to the DSN in argv[1], runs the
// steps in the file argv[2] (each ends at a line ending with `;`; `--` lines are comments) after
// the two health checks, and prints one JSON object per step: the results of each statement
// (command tag, column names, type OIDs, text values) or the error's SQLSTATE.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgconn"
)

type result struct {
	Tag     string      `json:"tag"`
	Names   []string    `json:"names"`
	Oids    []uint32    `json:"oids"`
	Rows    [][]*string `json:"rows"`
}

type step struct {
	SQL     string   `json:"sql"`
	Results []result `json:"results"`
	Error   string   `json:"error,omitempty"`
}

func steps(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := []string{"-- ping", ";"}
	var cur strings.Builder
	scan := bufio.NewScanner(f)
	scan.Buffer(make([]byte, 1<<20), 1<<20)
	for scan.Scan() {
		line := scan.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "--")) {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	return out, scan.Err()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: replay DSN STEPS_FILE")
		os.Exit(2)
	}
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	defer conn.Close(ctx)
	all, err := steps(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "steps:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, sql := range all {
		s := step{SQL: sql, Results: []result{}}
		results, err := conn.Exec(ctx, sql).ReadAll()
		if err != nil {
			if pgErr, ok := err.(*pgconn.PgError); ok {
				s.Error = pgErr.Code
			} else {
				s.Error = err.Error()
			}
		}
		for _, r := range results {
			if r.Err != nil {
				continue
			}
			out := result{Tag: r.CommandTag.String(), Names: []string{}, Oids: []uint32{}, Rows: [][]*string{}}
			for _, f := range r.FieldDescriptions {
				out.Names = append(out.Names, string(f.Name))
				out.Oids = append(out.Oids, f.DataTypeOID)
			}
			for _, row := range r.Rows {
				vals := make([]*string, len(row))
				for i, v := range row {
					if v != nil {
						text := string(v)
						vals[i] = &text
					}
				}
				out.Rows = append(out.Rows, vals)
			}
			s.Results = append(s.Results, out)
		}
		if err := enc.Encode(s); err != nil {
			os.Exit(1)
		}
	}
}
