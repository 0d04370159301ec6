package chenyu

import (
	"net/http"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"
)

// The fuzz targets run the adapter's decoders on whatever an endpoint answers, through its
// real HTTP path (an in-memory transport): no panic, errors are typed and name the vendor,
// and what decodes is something the tools can show. The documents' examples in
// testdata/chenyu seed them, so `go test` runs those as ordinary tests.

func fuzzProvider(routes ...wiretest.Route) *Provider {
	return New(Config{APIKey: "fuzz", BaseURL: "http://chenyu.invalid", HTTPClient: wiretest.Transport(routes).Client()})
}

// seed adds every example payload, the most fitting first, with a 200 status, and the
// envelopes of the documented refusals.
func seed(f *testing.F, first string) map[string][]byte {
	docs := wiretest.Testdata(f, "chenyu")
	f.Add(docs[first], uint8(0))
	for _, n := range wiretest.Sorted(docs) {
		if n != first {
			f.Add(docs[n], uint8(0))
		}
	}
	for _, s := range []struct {
		body   string
		status uint8
	}{
		{`{"code":2,"msg":"未登录"}`, 6},
		{`{"code":"429","msg":"请求过于频繁"}`, 0},
		{`{"code":429,"msg":"请求过于频繁"}`, 10},
		{`{"code":-2,"msg":"系统异常"}`, 11},
		{`{"code":1,"msg":"余额不足"}`, 0},
		{`{"code":0.0,"msg":"ok","data":null}`, 0},
		{`<html><title>502 Bad Gateway</title></html>`, 12},
	} {
		f.Add([]byte(s.body), s.status)
	}
	return docs
}

func FuzzOffers(f *testing.F) {
	seed(f, "gpu_list.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		p := fuzzProvider(wiretest.Route{Suffix: "/gpu/list", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: body}})
		offers, err := p.ListOffers(t.Context())
		wiretest.CheckError(t, Name, err)
		wiretest.CheckOffers(t, Name, offers)
	})
}

// FuzzInstances fuzzes the list and the info answers; the GPU list (for prices) is the example.
func FuzzInstances(f *testing.F) {
	docs := seed(f, "instance_list.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		answer := wiretest.Answer{Status: wiretest.Status(status), Body: body}
		p := fuzzProvider(
			wiretest.Route{Suffix: "/gpu/list", Answer: wiretest.Answer{Body: docs["gpu_list.json"]}},
			wiretest.Route{Suffix: "/instance/list", Answer: answer},
			wiretest.Route{Suffix: "/instance/info", Answer: answer},
		)
		ins, err := p.ListInstances(t.Context())
		wiretest.CheckError(t, Name, err)
		wiretest.CheckInstances(t, Name, ins)
		one, err := p.GetInstance(t.Context(), sample)
		wiretest.CheckError(t, Name, err)
		if err == nil {
			wiretest.CheckInstances(t, Name, []providers.Instance{one})
		}
	})
}

// FuzzImages fuzzes the three image lists with one answer.
func FuzzImages(f *testing.F) {
	seed(f, "private_image_list.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		p := fuzzProvider(wiretest.Route{Answer: wiretest.Answer{Status: wiretest.Status(status), Body: body}})
		ims, err := p.ListImages(t.Context(), providers.ImageQuery{})
		wiretest.CheckError(t, Name, err)
		wiretest.CheckImages(t, Name, ims)
	})
}

// FuzzActionEnvelope fuzzes the envelope of an action's answer (shutdown): done, a typed
// refusal, or an unknown outcome (always after a 5xx or an answer that is not an envelope).
func FuzzActionEnvelope(f *testing.F) {
	seed(f, "startup_response.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		p := fuzzProvider(wiretest.Route{Method: http.MethodPost, Suffix: "/instance/shutdown", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: body}})
		err := p.Stop(t.Context(), sample)
		wiretest.CheckError(t, Name, err)
		if k := providers.KindOf(err); err != nil && wiretest.Status(status) >= 500 && k != providers.KindUnknown && k != providers.KindRateLimited && k != providers.KindAuth {
			t.Fatalf("a stop answered by a 5xx is of unknown outcome, not %q (%v)", k, err)
		}
	})
}

// FuzzCreateEnvelope fuzzes the answer to a purchase.
func FuzzCreateEnvelope(f *testing.F) {
	docs := seed(f, "instance_list.json")
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		p := fuzzProvider(
			wiretest.Route{Suffix: "/gpu/list", Answer: wiretest.Answer{Body: docs["gpu_list.json"]}},
			wiretest.Route{Suffix: "/instance/info", Answer: wiretest.Answer{Body: docs["instance_list.json"]}},
			wiretest.Route{Method: http.MethodPost, Suffix: "/instance/create_by_image", Answer: wiretest.Answer{Status: wiretest.Status(status), Body: body}},
		)
		res, err := p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1, Billing: providers.BillingHourly})
		wiretest.CheckError(t, Name, err)
		if res.Instance != nil {
			wiretest.CheckInstances(t, Name, []providers.Instance{*res.Instance})
		}
	})
}
