// Package schemas holds the JSON Schemas of gpu-mcp's tools, one file per tool and direction
// (<tool>.input.json, <tool>.output.json), generated from the tools' Go structs by `make
// schemas`. The server serves these files as they are, so that starting it generates no
// schema; a test in package tools fails when they differ from what the structs generate.
package schemas

import (
	"bytes"
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
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return nil
	}
	return out.Bytes()
}
