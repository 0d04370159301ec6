package tools

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// FuzzToolArguments sends any bytes as the arguments of any tool, through Tool.Call (the
// decoding, validation and handler an MCP request reaches). Whatever arrives: no panic inside
// a handler, an error result that says something, or a result whose structured content
// encodes; and nothing changes at the provider, since no confirmation token can be valid.
func FuzzToolArguments(f *testing.F) {
	names := toolNames()
	seeds := []struct{ tool, args string }{
		{"list_providers", `{}`},
		{"list_gpu_offers", `{"provider":"alpha","gpu":"4090","min_gpus":2,"min_vram_gb":24,"max_price_per_hour":10.5,"region":"x","billing":"hourly","available_only":true,"limit":5}`},
		{"list_gpu_offers", `{"min_gpus":-1,"limit":1e9,"gpu":4090}`},
		{"list_images", `{"offer_id":"alpha:o1","kind":"public","limit":3}`},
		{"list_instances", `{"state":"running"}`},
		{"get_instance", `{"instance_id":"alpha:i1"}`},
		{"get_instance", `{"instance_id":"alpha:\u0000"}`},
		{"launch_instance", `{"offer_id":"alpha:o1","image_id":"alpha:img1","gpu_count":2,"billing":"monthly","periods":3,"name":"job-1","idempotency_key":"k1"}`},
		{"launch_instance", `{"offer_id":"alpha:o1","image_id":"alpha:img1","confirm_token":"v1.forged.token"}`},
		{"start_instance", `{"instance_id":"alpha:i1","confirm_token":""}`},
		{"stop_instance", `{"instance_id":"alpha:i1"}`},
		{"restart_instance", `{"instance_id":"nocolon"}`},
		{"save_image", `{"instance_id":"alpha:i1","image_name":"ckpt-1"}`},
		{"renew_instance", `{"instance_id":"alpha:i1","periods":36}`},
		{"destroy_instance", `{"instance_id":"alpha:i1","force":true}`},
		{"destroy_instance", `[]`},
		{"list_gpu_offers", `{"gpu":"` + strings.Repeat("x", 200) + `"}`},
		{"list_gpu_offers", `{} {}`},
		{"list_gpu_offers", `{"a":{"b":{"c":[[[[[]]]]]}}}`},
		{"list_gpu_offers", `null`},
	}
	for _, s := range seeds {
		f.Add(uint8(indexOf(names, s.tool)), []byte(s.args))
	}
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		fake := newFake("alpha")
		fake.addInstance("i1", providers.StateRunning)
		fake.addInstance("i2", providers.StateStopped)
		d := depsFor(t, fake)
		tools := All(d)
		tool := tools[int(which)%len(tools)]
		res := tool.Call(t.Context(), raw)
		if res == nil {
			t.Fatal("no result")
		}
		msg := text(res)
		if strings.Contains(msg, "failed inside gpu-mcp") {
			t.Fatalf("%s %q: a panic reached the handler's guard: %s", tool.Name, raw, msg)
		}
		if res.IsError {
			if e, ok := res.StructuredContent.(ErrorResult); !ok || e.Kind == "" || e.Provider == "" || e.Remedy == "" {
				t.Fatalf("%s %q: an error that does not say its kind, whose it is and what to do: %q %+v", tool.Name, raw, msg, res.StructuredContent)
			}
		} else if _, err := json.Marshal(res.StructuredContent); err != nil || msg == "" {
			t.Fatalf("%s %q: result cannot be encoded (%v) or has no text", tool.Name, raw, err)
		}
		if m := fake.mutations(); len(m) != 0 {
			t.Fatalf("%s %q: changed %v without a confirmation", tool.Name, raw, m)
		}
	})
}

func toolNames() []string {
	var names []string
	for _, t := range All(&Deps{}) {
		names = append(names, t.Name)
	}
	return names
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	panic("no tool " + name)
}
