package tools

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

// Every vendor's failures reach the agent, through the MCP client, as error results of the
// kind the adapter knows, naming the vendor, with a remedy and whether to retry; the text is
// what went wrong, then what to do, with one prefix at most.
func TestVendorErrorsCarryTheirKind(t *testing.T) {
	o := fast
	o.BreakerThreshold = -1
	e := newVendorEnv(t, envOptions{http: o})
	for _, vendor := range e.names {
		missing := map[string]any{"instance_id": vendor + ":nosuch-1"}
		cases := []struct {
			name      string
			faults    *emulated.Faults
			tool      string
			args      map[string]any
			kind      providers.ErrorKind
			retryable bool
		}{
			{"missing instance", nil, "get_instance", missing, providers.KindNotFound, false},
			{"missing instance to stop", nil, "stop_instance", missing, providers.KindNotFound, false},
			{"rate limit", &emulated.Faults{Status429: true, RetryAfter: "3"}, "get_instance", missing, providers.KindRateLimited, true},
			{"vendor down", &emulated.Faults{Status500: true}, "get_instance", missing, providers.KindUnavailable, true},
		}
		for _, c := range cases {
			if c.faults != nil {
				e.emus[vendor].SetFaults(*c.faults)
			}
			res, m := e.call(c.tool, c.args)
			e.emus[vendor].SetFaults()
			txt := text(res)
			if !res.IsError || m["kind"] != string(c.kind) || m["provider"] != vendor || m["retryable"] != c.retryable || m["remedy"] == "" {
				t.Errorf("%s %s: %v\n%s", vendor, c.name, m, txt)
				continue
			}
			lines := strings.Split(txt, "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], vendor+": ") || strings.Count(lines[0], vendor+":") != 1 || strings.Contains(txt, "refused (code") {
				t.Errorf("%s %s: the text is not one headline with one prefix and a remedy:\n%s", vendor, c.name, txt)
			}
		}
		// A purchase whose answer is lost: not retryable, and the remedy says how to check.
		args := e.launchArgs(vendor)
		_, plan := e.call("launch_instance", args)
		buy := e.buy[vendor]
		e.emus[vendor].SetFaults(emulated.Faults{DropConnection: true, Method: buy.Method, Path: buy.Path})
		args["confirm_token"] = plan["confirm_token"]
		res, m := e.call("launch_instance", args)
		e.emus[vendor].SetFaults()
		if !res.IsError || m["kind"] != "unknown_outcome" || m["retryable"] != false || !strings.Contains(m["remedy"].(string), "list_instances") {
			t.Errorf("%s: a lost purchase: %v", vendor, m)
		}
	}
}

// A call of a tool that does not exist is the protocol error the MCP specification asks for,
// and its message lists the tools, in every mode of the server.
func TestUnknownToolListsTheTools(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		d := depsFor(t, newFake("alpha"))
		d.ReadOnly = readOnly
		h := harnessFor(t, d)
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "launch", map[string]any{"offer_id": "alpha:o1"}
		_, err := h.c.CallTool(context.Background(), req)
		if err == nil || !strings.Contains(err.Error(), `there is no tool "launch"; call one of list_providers, `) {
			t.Fatalf("read-only %v: %v", readOnly, err)
		}
		for _, tool := range Registered(d) {
			if !strings.Contains(err.Error(), tool.Name) {
				t.Errorf("read-only %v: the answer does not name %s: %v", readOnly, tool.Name, err)
			}
		}
		if readOnly && strings.Contains(err.Error(), "launch_instance") {
			t.Errorf("read-only: the answer names a tool this server does not offer: %v", err)
		}
		if res, _ := h.call("list_providers", map[string]any{}); res.IsError {
			t.Fatalf("list_providers after an unknown tool: %s", text(res))
		}
	}
}

// Every error result matches its tool's output schema: the error branch is there, and it holds
// exactly the properties an error result has (written out in full in errorHome's schema). The
// e2e suites have the TypeScript SDK validate real error results against the served schemas.
func TestErrorResultsMatchTheOutputSchemas(t *testing.T) {
	h := newHarness(t, newFake("alpha"))
	for _, st := range Registered(h.deps) {
		tool := st.MCPTool()
		var s struct {
			Required []string `json:"required"`
			AnyOf    []struct {
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"anyOf"`
			AdditionalProperties *bool `json:"additionalProperties"`
		}
		if err := json.Unmarshal(tool.RawOutputSchema, &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Required) != 0 || len(s.AnyOf) != 2 || strings.Join(s.AnyOf[1].Required, ",") != strings.Join(errorRequired, ",") ||
			(s.AdditionalProperties != nil && !*s.AdditionalProperties) {
			t.Errorf("%s: the output schema does not admit the error result: %s", tool.Name, tool.RawOutputSchema)
		}
		if tool.Name == errorHome {
			for _, p := range append(errorRequired, "field", "value", "accepted") {
				if _, ok := s.AnyOf[1].Properties[p]; !ok {
					t.Errorf("%s: the error's shape lacks %s", tool.Name, p)
				}
			}
		}
	}
	// An error result has the required properties, and no others than the shape's.
	res, m := h.call("get_instance", map[string]any{"instance_id": "alpha"})
	allowed := map[string]bool{"field": true, "value": true, "accepted": true}
	for _, p := range errorRequired {
		allowed[p] = true
		if _, ok := m[p]; !ok {
			t.Errorf("the error result lacks %s: %v", p, m)
		}
	}
	for p := range m {
		if !allowed[p] {
			t.Errorf("the error result has %s, which the schema does not describe", p)
		}
	}
	if !res.IsError {
		t.Fatal("no error")
	}
}

// The token has one name: results carry confirm_token (and, until 0.3, the same token as
// confirmation_token), arguments take confirm_token, and an agent that sends back the old name
// it read is not refused. Two different tokens under the two names are.
func TestTheTokenHasOneName(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	f.addInstance("i2", providers.StateRunning)
	h := newHarness(t, f)
	_, plan := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1"})
	token, _ := plan["confirm_token"].(string)
	if token == "" || plan["confirmation_token"] != token {
		t.Fatalf("the plan's token: %v", plan)
	}
	res, m := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirmation_token": token})
	if res.IsError || m["status"] != "done" || f.state("i1") != providers.StateStopped {
		t.Fatalf("the old name: %s", text(res))
	}
	_, plan2 := h.call("stop_instance", map[string]any{"instance_id": "alpha:i2"})
	res, m = h.call("stop_instance", map[string]any{"instance_id": "alpha:i2", "confirm_token": plan2["confirm_token"], "confirmation_token": token})
	if !res.IsError || m["field"] != "confirmation_token" || f.state("i2") != providers.StateRunning {
		t.Fatalf("two tokens: %v %s", m, text(res))
	}
	// Descriptions and schemas speak of confirm_token only; the old name is in results alone.
	list, _ := h.c.ListTools(context.Background(), mcp.ListToolsRequest{})
	for _, tool := range list.Tools {
		in, _ := json.Marshal(tool.InputSchema)
		if strings.Contains(tool.Description, "confirmation_token") || strings.Contains(string(tool.RawInputSchema)+string(in), "confirmation_token") {
			t.Errorf("%s speaks of confirmation_token", tool.Name)
		}
		if tool.Annotations.ReadOnlyHint != nil && !*tool.Annotations.ReadOnlyHint && strings.Contains(tool.Description, "token") && !strings.Contains(tool.Description, "confirm_token") {
			t.Errorf("%s: a description that speaks of a token without its name", tool.Name)
		}
	}
}

// harnessFor is a client of a server on d.
func harnessFor(t *testing.T, d *Deps) *harness {
	t.Helper()
	return &harness{t: t, deps: d, c: inProcessClient(t, d, "test", nil)}
}
