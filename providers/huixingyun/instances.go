package huixingyun

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

func (p *Provider) instances(ctx context.Context, op string) ([]instance, error) {
	var out instanceList
	if err := p.call(ctx, httpx.Request{Path: "/gpu/instances/list", Op: op}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// ListInstances lists every instance of the account (the API has no filter or paging).
func (p *Provider) ListInstances(ctx context.Context) ([]providers.Instance, error) {
	items, err := p.instances(ctx, "list instances")
	if err != nil {
		return nil, err
	}
	out := make([]providers.Instance, 0, len(items))
	for _, it := range items {
		if strings.TrimSpace(it.GID) == "" {
			continue
		}
		out = append(out, p.instanceOf(it))
	}
	return out, nil
}

// GetInstance finds id in the list, since the API has no get-one endpoint.
func (p *Provider) GetInstance(ctx context.Context, id string) (providers.Instance, error) {
	op := "get " + id
	if err := checkGID(op, id); err != nil {
		return providers.Instance{}, err
	}
	it, err := p.findInstance(ctx, op, id)
	if err != nil {
		return providers.Instance{}, err
	}
	return p.instanceOf(it), nil
}

func (p *Provider) findInstance(ctx context.Context, op, gid string) (instance, error) {
	items, err := p.instances(ctx, op)
	if err != nil {
		return instance{}, err
	}
	for _, it := range items {
		if it.GID == gid {
			return it, nil
		}
	}
	return instance{}, &providers.Error{Kind: providers.KindNotFound, Provider: Name, Op: op,
		Message: fmt.Sprintf("no instance %s in the account", gid), Remedy: "check the id with list_instances"}
}

// gpuModelCount matches the " * 1" that size.gpu_model appends ("NVIDIA 4090 * 1").
var gpuModelCount = regexp.MustCompile(`\s*\*\s*\d+\s*$`)

func (p *Provider) instanceOf(it instance) providers.Instance {
	raw := string(it.Status)
	st := stateOf(raw)
	if st == providers.StateUnknown {
		p.log.Debug().Str("gid", it.GID).Str("status", raw).Msg("unknown HuiXingYun instance status")
	}
	bill := billingOf(string(it.PayMethod))
	if bill == "" && it.PayMethod != "" {
		p.log.Debug().Str("gid", it.GID).Str("pay_method", string(it.PayMethod)).Msg("unknown HuiXingYun pay_method")
	}
	model := strings.TrimSpace(gpuModelCount.ReplaceAllString(string(it.Size.GPUModel), ""))
	imageName := string(it.Image.Name)
	if imageName == "" {
		imageName = string(it.Image.ImageID)
	}
	inst := providers.Instance{
		ID:         it.GID,
		Provider:   Name,
		Name:       string(it.Name),
		State:      st,
		RawState:   raw,
		GPUModel:   model,
		GPUCount:   int(it.Size.GPU),
		VCPUs:      int(it.Size.CPU),
		RAMGB:      int(it.Size.Memory),
		Image:      imageName,
		Region:     string(it.RoomName),
		RegionName: zoneName(string(it.RoomName)),
		Billing:    bill,
		CreatedAt:  parseTime(string(it.CreateAt)),
		ExpiresAt:  parseTime(string(it.ExpireAt)),
		OrderID:    string(it.OrderUID),
	}
	if host := string(it.IP); host != "" {
		port, err := strconv.Atoi(string(it.Port))
		if err != nil || port < 0 || port > 65535 {
			port = 0 // a placeholder or garbage port is left out rather than failing the list
		}
		c := &providers.Connection{SSHHost: host, SSHPort: port, SSHUser: string(it.Username), SSHPassword: string(it.Password)}
		user := c.SSHUser
		if user == "" {
			user = "root"
		}
		if c.SSHPort > 0 {
			c.SSHCommand = "ssh -p " + strconv.Itoa(c.SSHPort) + " " + user + "@" + host
		} else {
			c.SSHCommand = "ssh " + user + "@" + host
		}
		inst.Connection = c
	}
	return inst
}

// stateOf maps the vendor's status. Only "Stopped" is documented; the rest is the obvious
// vocabulary, matched case-insensitively (quirk 5.1.9).
func stateOf(raw string) providers.State {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "creating", "pending":
		return providers.StatePending
	case "starting":
		return providers.StateStarting
	case "running":
		return providers.StateRunning
	case "stopping":
		return providers.StateStopping
	case "stopped":
		return providers.StateStopped
	case "restarting":
		return providers.StateRestarting
	case "destroying", "deleting":
		return providers.StateDeleting
	case "error", "failed":
		return providers.StateError
	}
	return providers.StateUnknown
}

// billingOf maps pay_method; only "Month" is documented (quirk 5.1.9). Unknown values give "".
func billingOf(raw string) providers.BillingMode {
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "hour", "hourly":
		return providers.BillingHourly
	case "day", "daily":
		return providers.BillingDaily
	case "month", "monthly":
		return providers.BillingMonthly
	}
	return ""
}

// parseTime reads an RFC 3339 timestamp; empty, zero or unreadable ones are unset.
func parseTime(s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t, err = time.ParseInLocation("2006-01-02 15:04:05", s, cst)
		if err != nil {
			return nil
		}
	}
	if t.IsZero() || t.Year() <= 1 {
		return nil
	}
	return &t
}
