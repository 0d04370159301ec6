package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/tools"
)

// gpu-mcp answers the task requests of its long tools itself, in front of mcp-go's
// transports (tools.Tasks says why): these are the two places where messages come in.

// frontStdio puts tasks in front of mcp-go's stdio server: each line from the client is
// offered to tasks first, and the lines it does not answer go on to mcp-go, in order,
// through the reader it returns. The answers tasks gives and everything mcp-go writes share
// the writer it returns, one message per write (mcp-go writes each of its messages in one
// write). done ends the requests tasks is still answering; call it once mcp-go stopped.
func frontStdio(ctx context.Context, tasks *tools.Tasks, stdin io.Reader, stdout io.Writer, log zerolog.Logger) (io.Reader, io.Writer, func()) {
	if tasks == nil {
		return stdin, stdout, func() {}
	}
	out := &lockedWriter{w: stdout}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	var answering sync.WaitGroup
	go func() {
		defer pw.Close()
		r := bufio.NewReader(stdin)
		for {
			line, err := r.ReadBytes('\n')
			if msg := bytes.TrimSpace(line); len(msg) > 0 {
				if answer, ok := tasks.Route(msg); ok {
					answering.Add(1)
					go func() {
						defer answering.Done()
						b, merr := json.Marshal(answer(ctx))
						if merr != nil {
							log.Error().Err(merr).Msg("an answer to a task request could not be encoded")
							return
						}
						if _, werr := out.Write(append(b, '\n')); werr != nil {
							log.Warn().Err(werr).Msg("an answer to a task request could not be written to stdout")
						}
					}()
				} else if _, werr := pw.Write(line); werr != nil {
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					log.Warn().Err(err).Msg("reading stdin")
				}
				return
			}
		}
	}()
	return pr, out, func() {
		cancel()
		pr.Close()
		answering.Wait()
	}
}

// lockedWriter writes one message at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// answerTask answers a streamable HTTP POST whose message tasks answers, as JSON; it reports
// false for every other body, which goes on to mcp-go.
func answerTask(tasks *tools.Tasks, w http.ResponseWriter, r *http.Request, body []byte) bool {
	if tasks == nil {
		return false
	}
	answer, ok := tasks.Route(bytes.TrimSpace(body))
	if !ok {
		return false
	}
	b, err := json.Marshal(answer(r.Context()))
	if err != nil {
		http.Error(w, "the answer could not be encoded", http.StatusInternalServerError)
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return true
}
