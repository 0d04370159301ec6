package datenfab

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// kubeName bounds what goes into a URL path: instance names, cluster names and SKU ids are
// Kubernetes-style names, 1 to 253 letters, digits, dots, dashes or underscores, starting with
// a letter or digit. (A regular expression with {0,252} says it too, but compiles to a
// program 253 steps long at every start.)
func kubeName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

func checkInstanceID(op, id string) error {
	if !kubeName(id) {
		return errf(providers.KindInvalid, op, "use an instance id from list_instances (datenfab instances look like datenfab:instance-4ca9xxxx)",
			"malformed datenfab instance id %q", id)
	}
	return nil
}

func instancesPath(cluster string) string {
	return "/clusters/" + url.PathEscape(cluster) + "/instances"
}

func instancePath(cluster, name string) string {
	return instancesPath(cluster) + "/" + url.PathEscape(name)
}

// ListInstances implements providers.Provider: the instances of every cluster named by /regions.
func (p *Provider) ListInstances(ctx context.Context) ([]providers.Instance, error) {
	nodes, err := p.listAll(ctx)
	if err != nil && providers.AsIncomplete(err) == nil {
		return nil, err
	}
	out := make([]providers.Instance, 0, len(nodes))
	for _, n := range nodes {
		if strings.TrimSpace(n.Name) == "" {
			// Without a name an instance cannot be addressed by any call.
			p.log.Warn().Str("cluster", n.cluster).Str("uid", n.UID).Msg("datenfab listed an instance without a name; left out")
			continue
		}
		out = append(out, p.instanceOf(n.wireInstance, n.cluster))
	}
	return out, err
}

type clusterInstance struct {
	wireInstance
	cluster string
}

// listAll lists every cluster and refreshes the name -> cluster cache. A failing cluster fails
// the whole list: a partial list could make an agent believe an instance is gone. A cluster
// that reports more instances than it lists (no paging is documented) gives what it lists,
// with a *providers.Incomplete that says so.
func (p *Provider) listAll(ctx context.Context) ([]clusterInstance, error) {
	regions, err := p.listRegions(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var all []clusterInstance
	var cut error
	for _, r := range regions {
		c := r.ClusterName
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		var list wireInstanceList
		if err := p.getJSON(ctx, instancesPath(c), nil, "list instances of cluster "+c, &list); err != nil {
			return nil, err
		}
		if list.HasNextPage {
			// No paging parameter is documented (quirk 5.2.13): say so rather than stay silent.
			p.log.Warn().Str("cluster", c).Int("returned", len(list.Nodes)).Int64("total", int64(list.TotalCount)).
				Msg("datenfab reports more instances (hasNextPage) but documents no paging parameter; the list is incomplete")
			if cut == nil {
				cut = &providers.Incomplete{Provider: Name, Op: "list instances of cluster " + c, Listed: len(list.Nodes), Total: int(list.TotalCount),
					Reason: "Datenfab reports more (hasNextPage) but documents no way to ask for them"}
			}
		}
		p.mu.Lock()
		for _, n := range list.Nodes {
			if n.Name != "" {
				p.clusters[n.Name] = c
			}
		}
		p.mu.Unlock()
		for _, n := range list.Nodes {
			all = append(all, clusterInstance{n, c})
		}
	}
	return all, cut
}

// clusterOf finds the cluster of instance name: from the cache, else by listing every cluster.
func (p *Provider) clusterOf(ctx context.Context, op, name string) (string, error) {
	p.mu.Lock()
	c, ok := p.clusters[name]
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	if _, err := p.listAll(ctx); err != nil && providers.AsIncomplete(err) == nil {
		return "", err
	}
	p.mu.Lock()
	c, ok = p.clusters[name]
	p.mu.Unlock()
	if !ok {
		return "", errf(providers.KindNotFound, op, "check the id with list_instances", "no instance named %q in any cluster", name)
	}
	return c, nil
}

// forget drops a name from the cache after the vendor said it does not exist.
func (p *Provider) forget(name string) {
	p.mu.Lock()
	delete(p.clusters, name)
	p.mu.Unlock()
}

// GetInstance implements providers.Provider.
func (p *Provider) GetInstance(ctx context.Context, id string) (providers.Instance, error) {
	op := "get " + id
	if err := checkInstanceID(op, id); err != nil {
		return providers.Instance{}, err
	}
	cluster, err := p.clusterOf(ctx, op, id)
	if err != nil {
		return providers.Instance{}, err
	}
	var w wireInstance
	if err := p.getJSON(ctx, instancePath(cluster, id), nil, op, &w); err != nil {
		if providers.KindOf(err) == providers.KindNotFound {
			p.forget(id)
		}
		return providers.Instance{}, err
	}
	if w.Name == "" {
		w.Name = id
	}
	return p.instanceOf(w, cluster), nil
}

// instanceOf maps Datenfab's instance object.
func (p *Provider) instanceOf(w wireInstance, cluster string) providers.Instance {
	if cluster == "" {
		cluster = w.Region // holds the cluster name (quirk 5.2.9)
	}
	in := providers.Instance{
		ID:       w.Name,
		Provider: Name,
		Name:     w.DisplayName,
		State:    p.stateOf(w.Status, w.Name),
		RawState: w.Status,
		GPUModel: w.Resources.GPUType,
		GPUCount: int(w.Resources.GPUNum),
		VCPUs:    cpuCount(string(w.Resources.CPU)),
		RAMGB:    quantityGB(string(w.Resources.Memory)),
		Image:    w.Image,
		Region:   p.regionName(cluster, w),
	}
	in.RegionName = regionInEnglish(in.Region)
	if in.Name == "" {
		in.Name, _ = w.Annotations.get(annDisplayName)
	}
	if in.GPUModel == "" {
		in.GPUModel, _ = w.Annotations.get(annGPUMachine)
	}
	in.OrderID, _ = w.Annotations.get(annCostOrderID)

	costType := string(w.Cost.CostType)
	if costType == "" {
		costType, _ = w.Annotations.get(annCostType)
	}
	in.Billing = sellingToBilling[costType]
	costTime := w.Cost.CostTime
	if costTime == "" {
		costTime, _ = w.Annotations.get(annCostTime)
	}

	in.CreatedAt = p.parseTime(w.CreationTimestamp)
	in.StopsAt = p.parseTime(w.ScheduleStopTimestamp)
	if in.Billing != "" && in.Billing != providers.BillingHourly && in.CreatedAt != nil {
		// No expiry field exists: a prepaid lease is taken to end CostTime after creation.
		in.ExpiresAt = leaseEnd(*in.CreatedAt, costTime)
	}
	in.PricePerHour = p.hourlyPrice(w, in.Billing, in.GPUCount)
	in.Connection = connectionOf(w.Servers)
	return in
}

// regionName prefers the display name of the cluster's region, as offers use it.
func (p *Provider) regionName(cluster string, w wireInstance) string {
	p.mu.Lock()
	r, ok := p.regions[cluster]
	p.mu.Unlock()
	if ok && r.Name != "" {
		return r.Name
	}
	if cluster != "" {
		return cluster
	}
	v, _ := w.Annotations.get(annRegion)
	return v
}

// hourlyPrice reads the unit-price annotation. Its unit is undocumented: it is used as CNY per
// hour of the whole instance only for hourly billing and only when it is plausible as such
// (see maxSaneGPUHourCNY); otherwise the price is left unknown.
func (p *Provider) hourlyPrice(w wireInstance, b providers.BillingMode, gpus int) *float64 {
	s, ok := w.Annotations.get(annUnitPrice)
	if !ok || strings.TrimSpace(s) == "" {
		return nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if gpus < 1 {
		gpus = 1
	}
	if err != nil || b != providers.BillingHourly || v <= 0 || v/float64(gpus) > maxSaneGPUHourCNY {
		p.log.Debug().Str("instance", w.Name).Str("unit_price", s).Str("billing", string(b)).
			Msg("datenfab unit-price annotation not used as the hourly price: not hourly billing or not plausible in CNY/hour")
		return nil
	}
	return &v
}

var costTimeRE = regexp.MustCompile(`^(\d{1,4})([DWMdwm])$`)

// leaseEnd is created plus a CostTime such as "3D", "2W" or "1M"; nil for anything else (an
// extension like "+3D" says nothing about the whole lease).
func leaseEnd(created time.Time, costTime string) *time.Time {
	m := costTimeRE.FindStringSubmatch(strings.TrimSpace(costTime))
	if m == nil {
		return nil
	}
	n, _ := strconv.Atoi(m[1])
	if n == 0 {
		return nil
	}
	var t time.Time
	switch strings.ToUpper(m[2]) {
	case "D":
		t = created.AddDate(0, 0, n)
	case "W":
		t = created.AddDate(0, 0, 7*n)
	default:
		t = created.AddDate(0, n, 0)
	}
	return &t
}

// stateOf maps Datenfab's status. Only Creating and Running are observed in the API documents;
// the others are the UI's state names (Starting, Shutting Down, Shutdown, Deleting) and
// plausible spellings, compared without case, spaces, hyphens or underscores.
func (p *Provider) stateOf(raw, name string) providers.State {
	k := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '_', '-':
			return -1
		}
		return r
	}, strings.ToLower(raw))
	switch k {
	case "creating", "pending":
		return providers.StatePending
	case "starting":
		return providers.StateStarting
	case "running":
		return providers.StateRunning
	case "shuttingdown", "stopping":
		return providers.StateStopping
	case "shutdown", "stopped":
		return providers.StateStopped
	case "deleting":
		return providers.StateDeleting
	case "failed", "error":
		return providers.StateError
	}
	p.log.Debug().Str("instance", name).Str("status", raw).Msg("datenfab status not recognised; reported as unknown")
	return providers.StateUnknown
}

// parseTime reads an RFC 3339 time with or without fractional seconds; empty, unparseable and
// Go's zero time ("0001-01-01T00:00:00Z", quirk 5.2.15) are unset.
func (p *Provider) parseTime(s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		p.log.Debug().Str("time", s).Msg("datenfab timestamp not RFC 3339; treated as unset")
		return nil
	}
	if t.IsZero() || t.Year() <= 1 {
		return nil
	}
	return &t
}

// cpuCount reads a CPU quantity: "16", or milli-CPUs "16000m".
func cpuCount(s string) int {
	s = strings.TrimSpace(s)
	if v, ok := strings.CutSuffix(s, "m"); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0
		}
		return int(math.Round(f / 1000))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int(math.Round(f))
}

// quantityGB reads a Kubernetes memory quantity as GB. The number is kept in the unit family
// it was written in (96Gi -> 96, 100G -> 100, 2048Mi -> 2, 1Ti -> 1024), because vendors write
// Gi where they mean their catalog's GB; plain bytes are divided by 2^30.
func quantityGB(s string) int {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	scales := []struct {
		suffix string
		toGB   float64
	}{
		{"Ki", 1.0 / (1 << 20)}, {"Mi", 1.0 / 1024}, {"Gi", 1}, {"Ti", 1024}, {"Pi", 1 << 20},
		{"k", 1e-6}, {"K", 1e-6}, {"M", 1e-3}, {"G", 1}, {"T", 1e3}, {"P", 1e6},
	}
	for _, sc := range scales {
		if v, ok := strings.CutSuffix(s, sc.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 {
				return 0
			}
			return int(math.Round(f * sc.toGB))
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0
	}
	return int(math.Round(f / (1 << 30)))
}

// connectionOf maps the servers object; nil when there is nothing to connect to yet (the
// create answer has no servers, quirk 5.2.11).
func connectionOf(s *wireServers) *providers.Connection {
	if s == nil {
		return nil
	}
	c := providers.Connection{}
	if s.SSH != nil {
		cmd := strings.TrimSpace(s.SSH.SSHAddr)
		if cmd != "" {
			c.SSHCommand = cmd // kept verbatim when it cannot be read
			if user, host, port, ok := parseSSH(cmd); ok {
				c.SSHUser, c.SSHHost, c.SSHPort = user, host, port
				if user == "" {
					user = "root"
				}
				c.SSHCommand = fmt.Sprintf("ssh -p %d %s@%s", port, user, host)
			}
		}
		c.SSHPassword = s.SSH.SSHPassword
	}
	if u := strings.TrimSpace(s.Jupyterlab); u != "" {
		c.WebURLs = append(c.WebURLs, providers.WebURL{Name: "JupyterLab", URL: u})
	}
	if u := strings.TrimSpace(s.Tensorboard); u != "" {
		c.WebURLs = append(c.WebURLs, providers.WebURL{Name: "TensorBoard", URL: u})
	}
	if c.Empty() {
		return nil
	}
	return &c
}

// sshFlagsWithArg are the ssh options that take a separate argument.
const sshFlagsWithArg = "BbcDEeFIiJLlmOoPpQRSWw"

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[[0-9A-Fa-f:.]+\]$`)

// parseSSH reads an sshAddr, which Datenfab gives as a shell command: "ssh -p30099 root@host",
// "ssh -p 30099 root@host", "ssh root@host" (port 22), "ssh -l root host", "ssh://root@host:30099".
func parseSSH(cmd string) (user, host string, port int, ok bool) {
	port = 22
	fields := strings.Fields(cmd)
	if len(fields) == 1 && strings.HasPrefix(fields[0], "ssh://") {
		u, err := url.Parse(fields[0])
		if err != nil || u.Hostname() == "" {
			return "", "", 0, false
		}
		if u.Port() != "" {
			n, err := strconv.Atoi(u.Port())
			if err != nil || n < 1 || n > 65535 {
				return "", "", 0, false
			}
			port = n
		}
		return u.User.Username(), u.Hostname(), port, hostRE.MatchString(u.Hostname())
	}
	if len(fields) < 2 || fields[0] != "ssh" {
		return "", "", 0, false
	}
	target := ""
	for i := 1; i < len(fields); i++ {
		f := fields[i]
		if !strings.HasPrefix(f, "-") || len(f) < 2 {
			if target != "" {
				break // a remote command follows the destination
			}
			target = f
			continue
		}
		flag, val := f[1], f[2:]
		if !strings.ContainsRune(sshFlagsWithArg, rune(flag)) {
			continue
		}
		if val == "" {
			if i+1 >= len(fields) {
				return "", "", 0, false
			}
			i++
			val = fields[i]
		}
		switch flag {
		case 'p':
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 65535 {
				return "", "", 0, false
			}
			port = n
		case 'l':
			user = val
		}
	}
	if target == "" {
		return "", "", 0, false
	}
	if u, h, found := strings.Cut(target, "@"); found {
		user, target = u, h
	}
	if !hostRE.MatchString(target) {
		return "", "", 0, false
	}
	return user, target, port, true
}
