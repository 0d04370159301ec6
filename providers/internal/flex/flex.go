// Package flex decodes the loosely typed numbers vendors send: 1, "1", "", null, 1.0.
package flex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Int decodes a JSON number or a string holding one; "" and null decode to 0.
type Int int64

// UnmarshalJSON implements json.Unmarshaler.
func (i *Int) UnmarshalJSON(b []byte) error {
	s, err := scalar(b)
	if err != nil {
		return err
	}
	if s == "" {
		*i = 0
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*i = Int(n)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != float64(int64(f)) {
		return fmt.Errorf("flex.Int: %q is not an integer", s)
	}
	*i = Int(int64(f))
	return nil
}

// Float decodes a JSON number or a string holding one; "" and null decode to 0.
type Float float64

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	s, err := scalar(b)
	if err != nil {
		return err
	}
	if s == "" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	// NaN and infinities are no price or size, and JSON cannot carry them onwards.
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("flex.Float: %q is not a number", s)
	}
	*f = Float(v)
	return nil
}

// String decodes a JSON string, number or bool into its text; null decodes to "".
type String string

// UnmarshalJSON implements json.Unmarshaler.
func (s *String) UnmarshalJSON(b []byte) error {
	v, err := scalar(b)
	if err != nil {
		return err
	}
	*s = String(v)
	return nil
}

// scalar returns the text of a JSON string, number, bool or null ("" for null).
func scalar(b []byte) (string, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return "", nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", err
		}
		return strings.TrimSpace(s), nil
	case '{', '[':
		return "", fmt.Errorf("flex: expected a scalar, got %.20s", b)
	}
	return string(b), nil
}
