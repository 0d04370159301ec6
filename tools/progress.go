package tools

import (
	"context"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

type progressKey struct{}

// progress sends MCP progress notifications for one request, in order, when the client asked
// for them with a progress token; without a token it does nothing.
type progress struct {
	mu    sync.Mutex
	ctx   context.Context
	token mcp.ProgressToken
	n     float64
}

func withProgress(ctx context.Context, meta *mcp.Meta) context.Context {
	if meta == nil || meta.ProgressToken == nil {
		return ctx
	}
	return context.WithValue(ctx, progressKey{}, &progress{ctx: ctx, token: meta.ProgressToken})
}

// reportProgress tells the client how far a long call got: step counts up by one each time;
// total is 0 when unknown. In an operation the step is recorded there, and reaches the client
// only while its call waits. A notification that cannot be sent is dropped: progress is
// advice.
func reportProgress(ctx context.Context, total int, message string) {
	if lo := opFrom(ctx); lo != nil {
		lo.step(total, message)
		return
	}
	p, _ := ctx.Value(progressKey{}).(*progress)
	p.send(total, message)
}

func (p *progress) send(total int, message string) { p.sendAt(nextStep, float64(total), message) }

// nextStep, as sendAt's done, is one step on from the last progress sent.
const nextStep = -1

// sendAt sends done of total (total 0 when unknown; done nextStep for one step on). A value
// that does not advance is dropped: MCP requires the progress a client sees to increase.
func (p *progress) sendAt(done, total float64, message string) {
	if p == nil {
		return
	}
	s := server.ServerFromContext(p.ctx)
	if s == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done == nextStep {
		done = p.n + 1
	}
	if done <= p.n {
		return
	}
	p.n = done
	params := map[string]any{"progressToken": p.token, "progress": p.n, "message": message}
	if total > 0 {
		params["total"] = total
	}
	_ = s.SendNotificationToClient(p.ctx, "notifications/progress", params)
}

// reportProgressAt is reportProgress with the progress given: done of total (total 0 when
// unknown), such as bytes copied; a value that does not advance is dropped.
func reportProgressAt(ctx context.Context, done, total float64, message string) {
	p, _ := ctx.Value(progressKey{}).(*progress)
	p.sendAt(done, total, message)
}
