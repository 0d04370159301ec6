package flex

import (
	"encoding/json"
	"testing"
)

func TestInt(t *testing.T) {
	for in, want := range map[string]Int{`1`: 1, `"1"`: 1, `""`: 0, `null`: 0, `" 42 "`: 42, `3.0`: 3, `-7`: -7, `"160"`: 160} {
		var got Int
		if err := json.Unmarshal([]byte(in), &got); err != nil || got != want {
			t.Errorf("Int(%s) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{`"x"`, `1.5`, `{}`, `[1]`, `true`} {
		var got Int
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Int(%s) = %d, want an error", in, got)
		}
	}
}

func TestFloat(t *testing.T) {
	for in, want := range map[string]Float{`5.5`: 5.5, `"5.50"`: 5.5, `""`: 0, `null`: 0, `10`: 10} {
		var got Float
		if err := json.Unmarshal([]byte(in), &got); err != nil || got != want {
			t.Errorf("Float(%s) = %v, %v; want %v", in, got, err, want)
		}
	}
	var f Float
	if err := json.Unmarshal([]byte(`"abc"`), &f); err == nil {
		t.Error("Float(\"abc\") did not fail")
	}
}

func TestString(t *testing.T) {
	for in, want := range map[string]String{`"a"`: "a", `0`: "0", `null`: "", `true`: "true", `"-2"`: "-2"} {
		var got String
		if err := json.Unmarshal([]byte(in), &got); err != nil || got != want {
			t.Errorf("String(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}
