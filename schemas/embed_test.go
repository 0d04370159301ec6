package schemas

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestCompactIsJSONCompact(t *testing.T) {
	for _, in := range []string{`{ "a" : "x y\"z \\" , "b":[ 1, 2 ] }`, "{\n  \"d\": \"tab\\t and \\\\\\\" quote\"\n}", `"  "`, `[]`} {
		var want bytes.Buffer
		if err := json.Compact(&want, []byte(in)); err != nil {
			t.Fatal(err)
		}
		if got := compact([]byte(in)); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("compact(%s) = %s, want %s", in, got, want.Bytes())
		}
	}
}
