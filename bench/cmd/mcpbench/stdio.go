package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"time"
)

// stdioClient speaks newline-delimited JSON-RPC to a server's stdin and stdout: one request in
// flight, written with one flush, its answer found among the lines read by matching the id.
type stdioClient struct {
	p       *proc
	w       *bufio.Writer
	r       *bufio.Reader
	line    []byte // a line longer than r's buffer, put together
	nextID  int64
	timeout time.Duration
	// initialized is when the initialize answer was read.
	initialized time.Time
}

func newStdioClient(p *proc, timeout time.Duration) *stdioClient {
	return &stdioClient{
		p:       p,
		w:       bufio.NewWriterSize(p.stdin, 64<<10),
		r:       bufio.NewReaderSize(p.stdout, 256<<10),
		nextID:  firstID,
		timeout: timeout,
	}
}

// call sends a request and returns its answer, valid until the next call. Lines that are not
// the answer (notifications, say) are skipped.
func (c *stdioClient) call(method string, params []byte) ([]byte, error) {
	id := c.nextID
	c.nextID++
	if err := c.send(request(id, method, params)); err != nil {
		return nil, err
	}
	if err := c.p.stdout.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	for {
		line, err := c.readLine()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("%s: no answer within %s", method, c.timeout)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: reading the answer: %w", method, err)
		}
		if hasID(line, id) {
			return line, nil
		}
	}
}

func (c *stdioClient) send(msg []byte) error {
	if err := c.p.stdin.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	c.w.Write(msg)
	c.w.WriteByte('\n')
	return c.w.Flush()
}

// readLine returns the next line without its newline.
func (c *stdioClient) readLine() ([]byte, error) {
	frag, err := c.r.ReadSlice('\n')
	if err == nil {
		return frag[:len(frag)-1], nil
	}
	c.line = append(c.line[:0], frag...)
	for err == bufio.ErrBufferFull {
		frag, err = c.r.ReadSlice('\n')
		c.line = append(c.line, frag...)
	}
	if err != nil {
		return nil, err
	}
	return c.line[:len(c.line)-1], nil
}

// initialize runs the MCP handshake.
func (c *stdioClient) initialize() error {
	msg, err := c.call("initialize", initializeParams)
	if err != nil {
		return err
	}
	c.initialized = time.Now()
	if _, err := fullCheck(msg); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	return c.send(initializedNotification)
}
