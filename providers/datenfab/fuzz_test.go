package datenfab

import (
	"net/http"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"
)

// The fuzz targets run the adapter's decoders on whatever an endpoint answers, through its
// real HTTP path (an in-memory transport): no panic, errors are typed and name the vendor,
// and what decodes is something the tools can show. The document's examples in
// testdata/datenfab seed them, so `go test` runs those as ordinary tests.

func fuzzProvider(routes ...wiretest.Route) *Provider {
	return New(Config{Token: "fuzz", Namespace: "ns", BaseURL: "http://datenfab.invalid", HTTPClient: wiretest.Transport(routes).Client()})
}

// seedPairs adds (first, second) pairs: the examples for both endpoints, then each example
// in the first place, with a 200 status.
func seedPairs(f *testing.F, first, second string) map[string][]byte {
	docs := wiretest.Testdata(f, "datenfab")
	f.Add(docs[first], docs[second], uint8(0))
	for _, n := range wiretest.Sorted(docs) {
		f.Add(docs[first], docs[n], uint8(0))
		f.Add(docs[n], docs[second], uint8(0))
	}
	f.Add(docs[first], []byte(`{"message":"unauthorized: missing or invalid token"}`), uint8(6))
	f.Add(docs[first], []byte(`<html><title>502 Bad Gateway</title></html>`), uint8(12))
	return docs
}

// FuzzOffers fuzzes /regions and /skus/computings together.
func FuzzOffers(f *testing.F) {
	seedPairs(f, "regions.json", "skus.json")
	f.Fuzz(func(t *testing.T, regions, skus []byte, status uint8) {
		p := fuzzProvider(
			wiretest.Route{Suffix: "/regions", Answer: wiretest.Answer{Body: regions}},
			wiretest.Route{Suffix: "/skus/computings", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: skus}},
		)
		offers, err := p.ListOffers(t.Context())
		wiretest.CheckError(t, Name, err)
		wiretest.CheckOffers(t, Name, offers)
	})
}

// FuzzInstances fuzzes the list and the detail answers.
func FuzzInstances(f *testing.F) {
	docs := seedPairs(f, "list_response.json", "detail_response.json")
	f.Fuzz(func(t *testing.T, list, detail []byte, status uint8) {
		p := fuzzProvider(
			wiretest.Route{Suffix: "/regions", Answer: wiretest.Answer{Body: docs["regions.json"]}},
			wiretest.Route{Suffix: "/instances", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: list}},
			wiretest.Route{Answer: wiretest.Answer{Body: detail}},
		)
		ins, err := p.ListInstances(t.Context())
		wiretest.CheckError(t, Name, err)
		wiretest.CheckInstances(t, Name, ins)
		one, err := p.GetInstance(t.Context(), "instance-ccffxxxx")
		wiretest.CheckError(t, Name, err)
		if err == nil {
			wiretest.CheckInstances(t, Name, []providers.Instance{one})
		}
	})
}

// FuzzCreateAnswer fuzzes the answer to a purchase: whatever it says, the adapter returns what
// was bought, a typed refusal, or an unknown outcome (always after a 5xx).
func FuzzCreateAnswer(f *testing.F) {
	docs := seedPairs(f, "create_response.json", "action_response.json")
	f.Fuzz(func(t *testing.T, create, _ []byte, status uint8) {
		p := fuzzProvider(
			wiretest.Route{Suffix: "/regions", Answer: wiretest.Answer{Body: docs["regions.json"]}},
			wiretest.Route{Suffix: "/skus/computings", Answer: wiretest.Answer{Body: docs["skus.json"]}},
			wiretest.Route{Method: http.MethodPost, Suffix: "/instances", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: create}},
		)
		res, err := p.Launch(t.Context(), providers.LaunchSpec{OfferID: "host-cluster/2/1", ImageID: "images.neolink-ai.com/matrixdc/pytorch:2.1", GPUCount: 1, Billing: providers.BillingHourly})
		wiretest.CheckError(t, Name, err)
		if err == nil && res.InstanceID == "" {
			t.Fatalf("a purchase reported done without an instance: %+v", res)
		}
		if res.Instance != nil {
			wiretest.CheckInstances(t, Name, []providers.Instance{*res.Instance})
		}
		if k := providers.KindOf(err); err != nil && wiretest.Status(status) >= 500 && k != providers.KindUnknown {
			t.Fatalf("a purchase answered by a 5xx is of unknown outcome, not %q", k)
		}
	})
}

// FuzzActionAnswer fuzzes the answer to power_off (documented as the JSON string "ok").
func FuzzActionAnswer(f *testing.F) {
	docs := seedPairs(f, "action_response.json", "list_response.json")
	f.Fuzz(func(t *testing.T, answer, list []byte, status uint8) {
		p := fuzzProvider(
			wiretest.Route{Suffix: "/regions", Answer: wiretest.Answer{Body: docs["regions.json"]}},
			wiretest.Route{Suffix: "/instances", Answer: wiretest.Answer{Body: list}},
			wiretest.Route{Suffix: "/power_off", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: answer}},
		)
		wiretest.CheckError(t, Name, p.Stop(t.Context(), "instance-ccffxxxx"))
	})
}
