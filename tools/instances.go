package tools

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// ListInstancesArgs filters instances.
type ListInstancesArgs struct {
	Provider string `json:"provider,omitempty" jsonschema:"maxLength=64" jsonschema_description:"only this provider"`
	State    string `json:"state,omitempty" jsonschema:"enum=pending,enum=starting,enum=running,enum=restarting,enum=stopping,enum=stopped,enum=saving,enum=deleting,enum=error,enum=unknown" jsonschema_description:"only instances in this normalized state"`
}

// ListInstancesResult is list_instances' answer. Passwords are left out: get_instance has them.
type ListInstancesResult struct {
	Instances []providers.Instance `json:"instances"`
	Running   int                  `json:"running"`
	Errors    []ProviderError      `json:"errors,omitempty" jsonschema_description:"providers not asked (their instances, missing here, may bill) or cut short"`
	Demo      bool                 `json:"demo,omitempty"`
}

func listInstances(d *Deps) Tool {
	return newTool("list_instances", "List instances",
		"List your instances on all configured providers with their normalized state (running, stopped, ...), GPU, billing and expiry. Passwords are left out; use get_instance for connection details.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *ListInstancesArgs) (ListInstancesResult, string, error) {
			ps, err := d.selectProviders(in.Provider)
			if err != nil {
				return ListInstancesResult{}, "", err
			}
			all, errs := fanOut(ctx, d, ps, func(ctx context.Context, p providers.Provider) ([]providers.Instance, error) {
				return p.ListInstances(ctx)
			})
			if err := allFailed(errs, len(ps)); err != nil {
				return ListInstancesResult{}, "", err
			}
			out := ListInstancesResult{Instances: []providers.Instance{}, Errors: errs, Demo: d.Demo}
			for _, inst := range all {
				if in.State != "" && string(inst.State) != in.State {
					continue
				}
				if inst.State == providers.StateRunning {
					out.Running++
				}
				out.Instances = append(out.Instances, withoutSecrets(inst))
			}
			if err := d.annotate(ctx, out.Instances); err != nil {
				out.Errors = append(out.Errors, ProviderError{Provider: "gpu-mcp", Error: "its state store could not be read, so auto-stops and orphans are not shown: " + errorText(err)})
			}
			sort.SliceStable(out.Instances, func(i, j int) bool { return out.Instances[i].ID < out.Instances[j].ID })
			return out, d.textPrefix() + instancesText(out), nil
		})
}

// withoutSecrets drops the password from a copy of inst.
func withoutSecrets(inst providers.Instance) providers.Instance {
	if inst.Connection != nil && inst.Connection.SSHPassword != "" {
		c := *inst.Connection
		c.SSHPassword = ""
		inst.Connection = &c
	}
	return inst
}

func instancesText(r ListInstancesResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %d running", count(len(r.Instances), "instance"), r.Running)
	rows := make([][]string, 0, len(r.Instances))
	for _, in := range r.Instances {
		gpu := in.GPUModel
		if in.GPUCount > 0 {
			gpu += " x" + strconv.Itoa(in.GPUCount)
		}
		state := string(in.State)
		if in.State == providers.StateUnknown {
			state += " (" + in.RawState + ")"
		}
		rows = append(rows, []string{in.ID, orDash(in.Name), state, orDash(gpu), orDash(string(in.Billing)),
			money(in.PricePerHour), timeCell(in.ExpiresAt), timeCell(in.StopsAt), managedCell(in.Managed)})
	}
	if len(rows) > 0 {
		b.WriteString("\n")
		b.WriteString(table([]string{"instance_id", "name", "state", "gpu", "billing", "CNY/h", "expires", "stops_at", "gpu-mcp"}, rows))
	}
	for _, in := range r.Instances {
		if m := in.Managed; m != nil && m.Orphan != "" {
			fmt.Fprintf(&b, "\n! ORPHAN %s: %s", in.ID, m.Orphan)
		}
	}
	b.WriteString(errorsText(r.Errors))
	return b.String()
}

// managedCell says in a word what gpu-mcp keeps of an instance: launched by it, and its lease.
func managedCell(m *providers.Managed) string {
	if m == nil {
		return "-"
	}
	var parts []string
	if m.LaunchedByGPUMCP {
		parts = append(parts, "launched")
	}
	if l := m.Lease; l != nil {
		switch {
		case l.OverdueSince != nil:
			parts = append(parts, l.Action+" OVERDUE")
		case l.DoneAt != nil:
			parts = append(parts, l.Action+" done")
		default:
			parts = append(parts, l.Action+" by "+l.By)
		}
	}
	for _, w := range m.Work {
		parts = append(parts, w.Action+" on "+w.Kind)
	}
	if m.Orphan != "" {
		parts = append(parts, "ORPHAN")
	}
	return strings.Join(parts, ", ")
}

// managedText renders what gpu-mcp keeps of an instance, for get_instance and the like.
func managedText(m *providers.Managed) string {
	if m == nil {
		return ""
	}
	var b strings.Builder
	if m.LaunchedByGPUMCP {
		b.WriteString("\nlaunched by gpu-mcp")
		if m.Key != "" {
			b.WriteString(" (launch " + m.Key + ")")
		}
	}
	for _, w := range m.Work {
		fmt.Fprintf(&b, "\nauto-%s %s", w.Action, w.When)
		if w.LastError != "" {
			b.WriteString("; the last look failed: " + w.LastError)
		}
	}
	if l := m.Lease; l != nil {
		what := "auto-stop"
		if l.Action == "destroy" {
			what = "auto-destroy"
		}
		switch {
		case l.DoneAt != nil:
			fmt.Fprintf(&b, "\n%s due %s: done at %s (%s)", what, timeCell(&l.At), timeCell(l.DoneAt), l.Outcome)
		case l.OverdueSince == nil:
			fmt.Fprintf(&b, "\n%s at %s by %s", what, timeCell(&l.At), l.By)
			if l.LastError != "" {
				b.WriteString("; the last attempt failed: " + l.LastError)
			}
		}
	}
	if m.Orphan != "" {
		b.WriteString("\nORPHAN: " + m.Orphan)
	}
	return b.String()
}

func timeCell(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// GetInstanceArgs names one instance.
type GetInstanceArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"provider-qualified instance id from list_instances or launch_instance"`
}

// GetInstanceResult is get_instance's answer.
type GetInstanceResult struct {
	Instance providers.Instance `json:"instance"`
	Demo     bool               `json:"demo,omitempty"`
}

func getInstance(d *Deps) Tool {
	return newTool("get_instance", "Get instance",
		"Get one instance with its state and connection details: an ssh command, host, port, user, the password (a secret: show it only to the user who asked), and web URLs such as Jupyter.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *GetInstanceArgs) (GetInstanceResult, string, error) {
			p, err := d.resolve(in.InstanceID, "instance_id")
			if err != nil {
				return GetInstanceResult{}, "", err
			}
			inst, err := p.GetInstance(ctx, in.InstanceID)
			if err != nil {
				return GetInstanceResult{}, "", err
			}
			inst = d.annotated(ctx, inst)
			return GetInstanceResult{Instance: inst, Demo: d.Demo}, d.textPrefix() + instanceText(inst), nil
		})
}

// instanceText renders one instance with its connection details.
func instanceText(in providers.Instance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", in.ID, orDash(in.Name), in.State)
	if in.RawState != "" && in.RawState != string(in.State) {
		fmt.Fprintf(&b, " [vendor: %s]", in.RawState)
	}
	if in.GPUModel != "" {
		fmt.Fprintf(&b, "\nGPU: %s x%d", in.GPUModel, in.GPUCount)
	}
	if in.Image != "" {
		b.WriteString("\nimage: " + in.Image)
	}
	if in.Billing != "" || in.PricePerHour != nil {
		fmt.Fprintf(&b, "\nbilling: %s, %s CNY/h", orDash(string(in.Billing)), money(in.PricePerHour))
	}
	if in.ExpiresAt != nil {
		b.WriteString("\nexpires: " + timeCell(in.ExpiresAt))
	}
	if in.StopsAt != nil {
		b.WriteString("\nstops automatically at: " + timeCell(in.StopsAt))
	}
	if in.ImageSaveStatus != "" {
		b.WriteString("\nimage save: " + in.ImageSaveStatus)
	}
	b.WriteString(managedText(in.Managed))
	if c := in.Connection; c != nil {
		if c.SSHCommand != "" {
			b.WriteString("\nssh: " + c.SSHCommand)
		}
		if c.SSHPassword != "" {
			b.WriteString("\nssh password (secret): " + c.SSHPassword)
		}
		for _, u := range c.WebURLs {
			fmt.Fprintf(&b, "\n%s: %s", u.Name, u.URL)
		}
	}
	return b.String()
}
