package chenyu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// states maps Chenyu's integer status (vendor-api.md 4.6, quirk 5.3.4). The documents list
// 2/21/22/24/27; create answers 1; third-party clients also handle 0, 3, 4 and 23.
var states = map[int64]providers.State{
	0:  providers.StatePending,    // created
	1:  providers.StatePending,    // initializing
	24: providers.StateStarting,   // 开机中
	2:  providers.StateRunning,    // 运行中
	27: providers.StateRestarting, // 重启中
	3:  providers.StateStopping,   // stopping (legacy)
	21: providers.StateStopping,   // 关机中
	4:  providers.StateStopped,    // stopped (legacy)
	22: providers.StateStopped,    // 已关机
	23: providers.StateError,      // abnormally stopped
}

// state maps a raw status; anything else, including a non-integer, is unknown and logged.
func (p *Provider) state(raw string) providers.State {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	if err == nil {
		if s, ok := states[n]; ok {
			return s
		}
	}
	p.log.Debug().Str("status", raw).Msg("chenyu instance status not known to gpu-mcp; shown as unknown")
	return providers.StateUnknown
}

// ListInstances implements providers.Provider, reading every page of GET /instance/list.
func (p *Provider) ListInstances(ctx context.Context) ([]providers.Instance, error) {
	list, err := fetchAll(ctx, p, p.http, "/instance/list", "instance_list", "list instances", nil,
		func(w wireInstance) string { return w.InstanceUUID })
	if err != nil && providers.AsIncomplete(err) == nil {
		return nil, err
	}
	prices := p.hourlyPrices(ctx)
	out := make([]providers.Instance, 0, len(list))
	for _, w := range list {
		if strings.TrimSpace(w.InstanceUUID) == "" {
			continue
		}
		out = append(out, p.instance(w, prices))
	}
	return out, err
}

// GetInstance implements providers.Provider with GET /instance/info.
func (p *Provider) GetInstance(ctx context.Context, id string) (providers.Instance, error) {
	op := "get instance " + id
	if err := checkID(op, id); err != nil {
		return providers.Instance{}, err
	}
	var w wireInstance
	if err := p.get(ctx, "/instance/info", url.Values{"instance_uuid": {id}}, op, &w); err != nil {
		return providers.Instance{}, err
	}
	if strings.TrimSpace(w.InstanceUUID) == "" {
		return providers.Instance{}, errf(providers.KindNotFound, op, "check the id with list_instances", "chenyu returned no instance %s", id)
	}
	return p.instance(w, p.hourlyPrices(ctx)), nil
}

// hourlyPrices maps gpu_uuid to its listed hourly price, for Instance.PricePerHour. A failure
// only leaves prices out: an instance read must not fail on the price list (and a list cut
// short gives the prices it has).
func (p *Provider) hourlyPrices(ctx context.Context) map[string]float64 {
	gpus, err := p.listGPUs(ctx)
	if err != nil && providers.AsIncomplete(err) == nil {
		p.log.Debug().Str("error", err.Error()).Msg("chenyu GPU prices unavailable; instance prices left out")
		return nil
	}
	m := make(map[string]float64, len(gpus))
	for _, g := range gpus {
		if g.Price != nil {
			if h := priceOf(g.Price.Hour); h != nil {
				m[g.GPUUUID] = *h
			}
		}
	}
	return m
}

// instance maps the wire instance. Chenyu bills API-created instances by the hour, but
// charging_type is undocumented, so Billing is left empty rather than guessed.
func (p *Provider) instance(w wireInstance, prices map[string]float64) providers.Instance {
	raw := strings.TrimSpace(string(w.Status))
	in := providers.Instance{
		ID:        w.InstanceUUID,
		Provider:  Name,
		Name:      strings.TrimSpace(string(w.Title)),
		State:     p.state(raw),
		RawState:  raw,
		GPUModel:  strings.TrimSpace(string(w.GPUName)),
		GPUCount:  int(w.GPUNums),
		Image:     imageLabel(string(w.ImageName), string(w.ImageTag), string(w.ImageUUID)),
		CreatedAt: unixTime(int64(w.CreateTime)),
	}
	if h, ok := prices[string(w.GPUUUID)]; ok && w.GPUNums > 0 {
		v := h * float64(w.GPUNums)
		in.PricePerHour = &v
	}
	if sr := w.ShutdownRegular; sr != nil && bool(sr.Enable) {
		// shutdown_time is documented as a Unix timestamp but also described in minutes
		// (quirk 5.3.6); a value too small to be a timestamp is not shown as a time.
		if t := int64(sr.ShutdownTime); t >= minTimestamp {
			in.StopsAt = unixTime(t)
		} else {
			p.log.Debug().Int64("shutdown_time", t).Msg("chenyu shutdown_time is not a Unix timestamp; StopsAt left out")
		}
	}
	if s := int64(w.SaveImageStatus); s != 0 {
		in.ImageSaveStatus = saveStatus[s]
		if in.ImageSaveStatus == "" {
			p.log.Debug().Int64("save_image_status", s).Msg("chenyu save_image_status not known to gpu-mcp")
		}
	}
	if c := connection(w); !c.Empty() {
		in.Connection = &c
	}
	return in
}

// minTimestamp (2001-09-09) separates Unix timestamps from small counts such as minutes.
const minTimestamp = 1_000_000_000

func imageLabel(name, tag, uuid string) string {
	name, tag = strings.TrimSpace(name), strings.TrimSpace(tag)
	switch {
	case name == "":
		return strings.TrimSpace(uuid)
	case tag == "":
		return name
	}
	return fmt.Sprintf("%s (%s)", name, tag)
}

// connection gathers SSH details from server_map[].ssh_info and web endpoints from
// server_map entries of port_type http and from server_url (strings or {url} objects).
func connection(w wireInstance) providers.Connection {
	var c providers.Connection
	seen := map[string]bool{}
	addWeb := func(name, u string) {
		u = strings.TrimSpace(u)
		if u == "" || seen[u] || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
			return
		}
		seen[u] = true
		if name == "" {
			name = "service"
		}
		c.WebURLs = append(c.WebURLs, providers.WebURL{Name: name, URL: u})
	}
	for _, s := range w.ServerMap {
		if ssh := s.SSHInfo; ssh != nil && c.SSHHost == "" && ssh.Host != "" {
			c.SSHHost, c.SSHPort = strings.TrimSpace(string(ssh.Host)), int(ssh.Port)
			c.SSHUser, c.SSHPassword = strings.TrimSpace(string(ssh.Username)), string(ssh.Password)
			continue
		}
		switch strings.ToLower(string(s.PortType)) {
		case "ssh":
			if c.SSHHost == "" {
				c.SSHHost, c.SSHPort = sshURL(string(s.URL))
			}
		default:
			addWeb(string(s.Title), string(s.URL))
		}
	}
	for _, raw := range w.ServerURL {
		var u wireServerURL
		if json.Unmarshal(raw, &u) == nil {
			addWeb(u.Name, u.URL)
		}
	}
	if c.SSHHost != "" {
		user := c.SSHUser
		if user == "" {
			user = "root"
		}
		if c.SSHPort > 0 {
			c.SSHCommand = fmt.Sprintf("ssh -p %d %s@%s", c.SSHPort, user, c.SSHHost)
		} else {
			c.SSHCommand = fmt.Sprintf("ssh %s@%s", user, c.SSHHost)
		}
	}
	return c
}

// sshURL reads host and port from "ssh://host:port".
func sshURL(s string) (string, int) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme != "ssh" || u.Hostname() == "" {
		return "", 0
	}
	port := 22
	if ps := u.Port(); ps != "" {
		if n, err := strconv.Atoi(ps); err == nil {
			port = n
		}
	}
	return u.Hostname(), port
}

// unixTime converts Unix seconds; 0 (or less) means unset.
func unixTime(s int64) *time.Time {
	if s <= 0 {
		return nil
	}
	t := time.Unix(s, 0).UTC()
	return &t
}

// checkID refuses an empty or malformed instance id before it reaches a URL or body.
func checkID(op, id string) error {
	if strings.TrimSpace(id) == "" || strings.ContainsAny(id, " \t\r\n/?#&") {
		return errf(providers.KindInvalid, op, "use an instance id from list_instances (chenyu:inst_...)", "malformed chenyu instance id %q", id)
	}
	return nil
}
