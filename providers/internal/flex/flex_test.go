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

func TestFloatRefusesWhatJSONCannotCarry(t *testing.T) {
	for _, in := range []string{`"NaN"`, `"nan"`, `"Inf"`, `"-Infinity"`, `"1e999"`, `1e999`} {
		var f Float
		if err := json.Unmarshal([]byte(in), &f); err == nil {
			t.Errorf("Float(%s) = %v, want an error", in, f)
		}
	}
}

// FuzzScalars feeds anything to the three types: none panics, and a Float that decodes can be
// encoded again.
func FuzzScalars(f *testing.F) {
	for _, s := range []string{`1`, `"1"`, `""`, `null`, `3.0`, `"5.50"`, `true`, `"NaN"`, `{}`, `[1]`, `1e400`, `"-0"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var i Int
		_ = json.Unmarshal(b, &i)
		var s String
		_ = json.Unmarshal(b, &s)
		var fl Float
		if json.Unmarshal(b, &fl) == nil {
			if _, err := json.Marshal(float64(fl)); err != nil {
				t.Fatalf("Float(%s) = %v cannot be encoded: %v", b, fl, err)
			}
		}
	})
}
