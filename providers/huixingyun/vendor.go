package huixingyun

import (
	"net/http"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

// Vendor describes HuiXingYun to the vendor list.
var Vendor = providers.Vendor{
	Name: Name, Title: "HuiXingYun", EnvPrefix: "HUIXINGYUN_", Hint: "HUIXINGYUN_TOKEN",
	Config:       func() providers.VendorConfig { return &Config{} },
	Capabilities: capabilities,
	Emulate: func(o emulated.Options) (providers.VendorConfig, emulated.Server) {
		s := hxytest.NewServer(hxytest.Options{StepDelay: o.StepDelay, Now: o.Now, Wrap: o.Wrap})
		return &Config{Token: s.Credential(), BaseURL: s.URL()}, s
	},
	Endpoints: emulated.Endpoints{Offers: "/gpu/product/list", OfferReads: 1,
		Buy: emulated.Faults{Method: http.MethodPost, Path: "/gpu/instances/buy"}},
}

// Enabled implements providers.VendorConfig: the token enables HuiXingYun.
func (c *Config) Enabled() (bool, error) { return c.Token != "", nil }

// Secrets implements providers.VendorConfig.
func (c *Config) Secrets() []string { return []string{c.Token} }

// Provider implements providers.VendorConfig.
func (c *Config) Provider(o providers.HTTPOptions, log *zerolog.Logger) providers.Provider {
	cfg := *c
	cfg.HTTP, cfg.Logger = o, log
	return New(cfg)
}
