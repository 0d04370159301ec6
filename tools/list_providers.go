package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// ListProvidersArgs asks for the short answer or the details.
type ListProvidersArgs struct {
	Details bool `json:"details,omitempty" jsonschema_description:"also each provider's notes: its vendor's rules and quirks (long)"`
}

// ProviderInfo describes one configured provider.
type ProviderInfo struct {
	Name                   string             `json:"name"`
	Demo                   bool               `json:"demo"`
	Billing                []string           `json:"billing" jsonschema_description:"modes launch_instance accepts"`
	Unsupported            map[string]string  `json:"unsupported,omitempty" jsonschema_description:"tools its API cannot serve, and why"`
	SaveImageStopsInstance bool               `json:"save_image_stops_instance"`
	PublishesPrices        bool               `json:"publishes_prices" jsonschema_description:"false: plans cannot show a cost"`
	BillingStates          []string           `json:"billing_states" jsonschema_description:"states in which it may bill the hourly price; the spending limits count these"`
	Notes                  []string           `json:"notes,omitempty" jsonschema_description:"with details=true"`
	Balance                *providers.Balance `json:"balance,omitempty" jsonschema_description:"where the vendor reports it"`
	BalanceError           string             `json:"balance_error,omitempty"`
}

// ListProvidersResult is list_providers' answer.
type ListProvidersResult struct {
	Providers []ProviderInfo `json:"providers"`
	Demo      bool           `json:"demo,omitempty"`
	Hint      string         `json:"hint,omitempty" jsonschema_description:"how to configure a provider, or to read the notes"`
}

func listProviders(d *Deps) Tool {
	return newTool("list_providers", "List GPU providers",
		"List the configured GPU cloud providers, what each can and cannot do (such as renew), their billing modes, and their balance where the vendor reports it. Call this first to see what is available; details=true adds each vendor's rules and quirks.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *ListProvidersArgs) (ListProvidersResult, string, error) {
			out := ListProvidersResult{Demo: d.Demo, Providers: []ProviderInfo{}}
			if d.Providers == nil || d.Providers.Len() == 0 {
				out.Hint = "No provider is configured: " + d.configureHint()
				return out, out.Hint, nil
			}
			notes := 0
			for _, p := range d.Providers.All() {
				c := p.Capabilities()
				info := ProviderInfo{Name: p.Name(), Demo: d.Demo, SaveImageStopsInstance: c.SaveImageStops,
					PublishesPrices: c.PublishesPrices}
				if in.Details {
					info.Notes = c.Notes
				}
				notes += len(c.Notes)
				for _, b := range c.Billing {
					info.Billing = append(info.Billing, string(b))
				}
				for _, st := range providers.States {
					if c.Bills(st) {
						info.BillingStates = append(info.BillingStates, string(st))
					}
				}
				if len(c.Unsupported) > 0 {
					info.Unsupported = map[string]string{}
					for a, why := range c.Unsupported {
						info.Unsupported[orDefault(actionTool[a], string(a))] = why
					}
				}
				if br, ok := p.(providers.BalanceReporter); ok {
					bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					bal, err := br.Balance(bctx)
					cancel()
					if err != nil {
						info.BalanceError = errorText(err)
					} else {
						info.Balance = &bal
					}
				}
				out.Providers = append(out.Providers, info)
			}
			text := d.textPrefix() + providersText(out.Providers)
			if !in.Details && notes > 0 {
				out.Hint = fmt.Sprintf("%d notes on the vendors' rules and quirks (what each refuses, what is lost, what is not documented) are left out: call list_providers with details=true to read them", notes)
				text += "\n" + upperFirst(out.Hint) + "."
			}
			return out, text, nil
		})
}

func providersText(ps []ProviderInfo) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s: billing %s", p.Name, strings.Join(p.Billing, "/"))
		if !p.PublishesPrices {
			b.WriteString("; no prices in its API")
		}
		if p.SaveImageStopsInstance {
			b.WriteString("; save_image stops the instance")
		}
		if p.Balance != nil {
			fmt.Fprintf(&b, "; balance %.2f CNY", p.Balance.CNY)
		}
		fmt.Fprintf(&b, "\n  bills by the hour while: %s", strings.Join(p.BillingStates, ", "))
		names := make([]string, 0, len(p.Unsupported))
		for a := range p.Unsupported {
			names = append(names, a)
		}
		sort.Strings(names)
		for _, a := range names {
			fmt.Fprintf(&b, "\n  unsupported: %s (%s)", a, p.Unsupported[a])
		}
		for _, n := range p.Notes {
			b.WriteString("\n  note: " + n)
		}
	}
	return b.String()
}
