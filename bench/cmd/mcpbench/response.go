package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// response is what the harness keeps of an HTTP answer. body is valid until the next answer
// is read into the same buffer.
type response struct {
	status  int
	session string // Mcp-Session-Id
	close   bool   // the server closes the connection after this answer
	body    []byte
}

var (
	hContentLength    = []byte("Content-Length")
	hTransferEncoding = []byte("Transfer-Encoding")
	hConnection       = []byte("Connection")
	hSessionID        = []byte("Mcp-Session-Id")
)

// readResponse reads one HTTP/1.1 answer from br, its body (Content-Length, chunked, or up to
// the end of the connection) into buf. Of the headers it reads only those four above: net/http's
// parser builds a map of every header, which costs the harness more than it needs to spend.
// io.EOF means the connection ended before the answer began; an end later is
// io.ErrUnexpectedEOF.
func readResponse(br *bufio.Reader, buf *bytes.Buffer) (response, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return response{}, err
	}
	r, err := readRest(line, br, buf)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w (%v)", io.ErrUnexpectedEOF, err)
	}
	return r, err
}

// readRest reads the answer after its status line.
func readRest(line []byte, br *bufio.Reader, buf *bytes.Buffer) (response, error) {
	var r response
	var err error
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return r, fmt.Errorf("not an HTTP/1.x status line: %q", clip(line))
	}
	if r.status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return r, fmt.Errorf("status line %q: %w", clip(line), err)
	}
	r.close = line[7] == '0' // HTTP/1.0 closes unless asked otherwise; no server here says 1.0
	length, chunked := int64(-1), false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return r, fmt.Errorf("reading headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		key, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return r, fmt.Errorf("header line without a colon: %q", clip(line))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(key, hContentLength):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return r, fmt.Errorf("Content-Length %q: not a length", value)
			}
		case bytes.EqualFold(key, hTransferEncoding):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(key, hConnection):
			r.close = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(key, hSessionID):
			r.session = string(value)
		}
	}
	buf.Reset()
	switch {
	case r.status/100 == 1 || r.status == 204 || r.status == 304:
	case chunked:
		err = readChunked(br, buf)
	case length >= 0:
		err = readN(br, buf, length)
	default:
		r.close = true
		_, err = buf.ReadFrom(br)
	}
	if err != nil {
		return r, fmt.Errorf("reading the body: %w", err)
	}
	r.body = buf.Bytes()
	return r, nil
}

// readChunked reads a chunked body into buf, trailers skipped.
func readChunked(br *bufio.Reader, buf *bytes.Buffer) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("chunk size %q: not a hexadecimal length", clip(line))
		}
		if n == 0 {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if err := readN(br, buf, n); err != nil {
			return err
		}
		if line, err = br.ReadSlice('\n'); err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) != 0 {
			return fmt.Errorf("chunk of %d bytes not followed by CRLF", n)
		}
	}
}

// readN appends the next n bytes of br to buf.
func readN(br *bufio.Reader, buf *bytes.Buffer, n int64) error {
	buf.Grow(int(n))
	dst := buf.AvailableBuffer()[:n]
	if _, err := io.ReadFull(br, dst); err != nil {
		return err
	}
	buf.Write(dst)
	return nil
}
