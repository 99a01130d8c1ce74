package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printRows writes rows as an aligned table under header, or, when asJSON,
// as a JSON array of the values (rows must then be JSON-encodable structs
// given in values). Every subject prints through here so the two formats
// stay alike.
func printRows(w io.Writer, asJSON bool, values any, header []string, rows [][]string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(values)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
