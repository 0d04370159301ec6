// Package schemas holds the JSON Schemas of gpu-mcp's tools, one file per tool and direction
// (<tool>.input.json, <tool>.output.json), generated from the tools' Go structs by `make
// schemas`. The server serves these files as they are, so that starting it generates no
// schema; a test in package tools fails when they differ from what the structs generate.
package schemas

import (
	"embed"
	"encoding/json"
)

//go:embed *.json
var files embed.FS

// Input is the input schema of tool, compact; nil when there is no such file.
func Input(tool string) json.RawMessage { return read(tool + ".input.json") }

// Output is the output schema of tool, compact; nil when there is no such file.
func Output(tool string) json.RawMessage { return read(tool + ".output.json") }

func read(name string) json.RawMessage {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil
	}
	return compact(b)
}

// compact drops the whitespace between the tokens of b. The files are valid JSON (a test in
// package tools checks each against what the structs generate), so this needs no validating
// scan (json.Compact's takes ten times as long, at every start).
func compact(b []byte) []byte {
	out := make([]byte, 0, len(b))
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			out = append(out, c)
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == ' ' || c == '\n' || c == '\t' || c == '\r':
		default:
			out = append(out, c)
			inString = c == '"'
		}
	}
	return out
}
