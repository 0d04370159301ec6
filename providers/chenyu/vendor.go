package chenyu

import (
	"net/http"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

// Vendor describes Chenyu to the vendor list.
var Vendor = providers.Vendor{
	Name: Name, Title: "Chenyu", EnvPrefix: "CHENYU_", Hint: "CHENYU_API_KEY",
	Config:       func() providers.VendorConfig { return &Config{} },
	Capabilities: capabilities,
	Emulate: func(o emulated.Options) (providers.VendorConfig, emulated.Server) {
		s := cytest.NewServer(cytest.Options{StepDelay: o.StepDelay, Now: o.Now, Wrap: o.Wrap})
		return &Config{APIKey: s.Credential(), BaseURL: s.URL()}, s
	},
	Endpoints: emulated.Endpoints{Offers: "/gpu/list", OfferReads: 1,
		Buy: emulated.Faults{Method: http.MethodPost, Path: "/instance/create_by_image"}},
}

// Enabled implements providers.VendorConfig: the API key enables Chenyu.
func (c *Config) Enabled() (bool, error) { return c.APIKey != "", nil }

// Secrets implements providers.VendorConfig.
func (c *Config) Secrets() []string { return []string{c.APIKey} }

// Provider implements providers.VendorConfig.
func (c *Config) Provider(o providers.HTTPOptions, log *zerolog.Logger) providers.Provider {
	cfg := *c
	cfg.HTTP, cfg.Logger = o, log
	return New(cfg)
}
