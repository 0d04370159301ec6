package redact

import (
	"bytes"
	"io"
	"sync"
)

// maxLine bounds what a Writer holds back while it waits for the end of a line.
const maxLine = 64 << 10

// Writer is an io.Writer that redacts what it passes on, a line at a time, so that a secret
// split across two writes is still found. A line's end is written once its newline arrives
// (zerolog, slog and log write whole lines); Flush writes what is left. It is safe for
// concurrent use.
type Writer struct {
	mu  sync.Mutex
	r   *Redactor
	out io.Writer
	buf []byte
}

// Writer returns a Writer that redacts with r and writes to out.
func (r *Redactor) Writer(out io.Writer) *Writer {
	return &Writer{r: r, out: out}
}

// Write redacts the complete lines of what has been written so far and writes them on.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	end := bytes.LastIndexByte(w.buf, '\n') + 1
	if end == 0 && len(w.buf) < maxLine {
		return len(p), nil
	}
	if end == 0 {
		end = len(w.buf) // a line longer than maxLine is redacted in pieces
	}
	err := w.emit(end)
	return len(p), err
}

// Flush writes what is held back, a line without its end.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.emit(len(w.buf))
}

// emit writes buf[:end], redacted, and keeps the rest; w.mu is held.
func (w *Writer) emit(end int) error {
	if end == 0 {
		return nil
	}
	_, err := io.WriteString(w.out, w.r.String(string(w.buf[:end])))
	w.buf = append(w.buf[:0], w.buf[end:]...)
	return err
}
