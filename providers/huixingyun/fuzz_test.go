package huixingyun_test

import (
	"net/http"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"
)

// The fuzz targets run the adapter's decoders on whatever an endpoint answers, through its
// real HTTP path (an in-memory transport): no panic, errors are typed and name the vendor,
// and what decodes is something the tools can show. The document's examples in
// testdata/huixingyun seed them, so `go test` runs those as ordinary tests.

// fuzzProvider is an adapter whose requests are answered by routes.
func fuzzProvider(routes ...wiretest.Route) *huixingyun.Provider {
	return huixingyun.New(huixingyun.Config{Token: "fuzz", BaseURL: "http://huixingyun.invalid", HTTPClient: wiretest.Transport(routes).Client()})
}

// seed adds every example payload, the most fitting first, with a 200 status.
func seed(f *testing.F, first string) {
	docs := wiretest.Testdata(f, "huixingyun")
	f.Add(docs[first], uint8(0))
	for _, n := range wiretest.Sorted(docs) {
		if n != first {
			f.Add(docs[n], uint8(0))
		}
	}
	f.Add([]byte(`{"message":"invalid token"}`), uint8(6))
	f.Add([]byte(`<html><title>502 Bad Gateway</title></html>`), uint8(12))
}

func FuzzOffers(f *testing.F) {
	seed(f, "product_list.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		p := fuzzProvider(wiretest.Route{Suffix: "/gpu/product/list", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: body}})
		offers, err := p.ListOffers(t.Context())
		wiretest.CheckError(t, huixingyun.Name, err)
		wiretest.CheckOffers(t, huixingyun.Name, offers)
	})
}

func FuzzInstances(f *testing.F) {
	seed(f, "instances_list.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		p := fuzzProvider(wiretest.Route{Suffix: "/gpu/instances/list", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: body}})
		ins, err := p.ListInstances(t.Context())
		wiretest.CheckError(t, huixingyun.Name, err)
		wiretest.CheckInstances(t, huixingyun.Name, ins)
		for _, in := range ins {
			one, err := p.GetInstance(t.Context(), in.ID)
			wiretest.CheckError(t, huixingyun.Name, err)
			wiretest.CheckInstances(t, huixingyun.Name, []providers.Instance{one})
		}
	})
}

func FuzzImages(f *testing.F) {
	docs := wiretest.Testdata(f, "huixingyun")
	seed(f, "images_list.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		answer := wiretest.Answer{Status: wiretest.Status(status), Body: body}
		p := fuzzProvider(
			wiretest.Route{Suffix: "/gpu/product/list", Answer: wiretest.Answer{Body: docs["product_list.json"]}},
			wiretest.Route{Suffix: "/gpu/application/list", Answer: wiretest.Answer{Body: docs["application_list.json"]}},
			wiretest.Route{Suffix: "/gpu/images/list", Answer: answer},
			wiretest.Route{Suffix: "/gpu/images/mine", Answer: answer},
		)
		ims, err := p.ListImages(t.Context(), providers.ImageQuery{})
		wiretest.CheckError(t, huixingyun.Name, err)
		wiretest.CheckImages(t, huixingyun.Name, ims)
	})
}

// FuzzBuyAnswer fuzzes the answer to a purchase: whatever it says, the adapter returns what
// was bought, a typed refusal, or an unknown outcome (always after a 5xx).
func FuzzBuyAnswer(f *testing.F) {
	docs := wiretest.Testdata(f, "huixingyun")
	seed(f, "instances_buy_response.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		p := fuzzProvider(
			wiretest.Route{Suffix: "/gpu/product/list", Answer: wiretest.Answer{Body: docs["product_list.json"]}},
			wiretest.Route{Suffix: "/gpu/instances/list", Answer: wiretest.Answer{Body: docs["instances_list.json"]}},
			wiretest.Route{Method: http.MethodPost, Suffix: "/gpu/instances/buy", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: body}},
		)
		res, err := p.Launch(t.Context(), providers.LaunchSpec{OfferID: offer4090, ImageID: "04c852e9-91a3-xxxx-b5de-a07acc51c39f", GPUCount: 1, Billing: providers.BillingHourly})
		wiretest.CheckError(t, huixingyun.Name, err)
		if res.Instance != nil {
			wiretest.CheckInstances(t, huixingyun.Name, []providers.Instance{*res.Instance})
		}
		if k := providers.KindOf(err); err != nil && wiretest.Status(status) >= 500 && k != providers.KindUnknown {
			t.Fatalf("a purchase answered by a 5xx is of unknown outcome, not %q", k)
		}
	})
}

// FuzzActionAnswer fuzzes the batch answer of an action (stop).
func FuzzActionAnswer(f *testing.F) {
	seed(f, "stop_response.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		p := fuzzProvider(wiretest.Route{Suffix: "/gpu/instances/stop", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: body}})
		wiretest.CheckError(t, huixingyun.Name, p.Stop(t.Context(), "gpu-105b63811xxxxxa4cb082"))
	})
}
